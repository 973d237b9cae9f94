"""What one training step optimises, per mode. Each objective owns its generator, its discriminator
(or none) and the frozen networks it needs, and exposes the same three calls to the trainer.

- `PixelObjective`: the GenDR-Pix model in pixel space. Targets are the ground truth (direct mode)
  or a latent teacher's decoded output (stage II / teacher-target mode). Stage II of the paper is
  this objective with teacher targets and the stage-I model as discriminator.
- `StageOneObjective`: the stage-I student predicts the teacher's HQ latent.

Condition split [ours]: the last `negative_share` of every batch runs with the negative embedding and
a fidelity-only loss (L1 + masked Fourier) against a softened target (`negative_blur`), the rest with
the positive embedding and the full loss.
CFG w > 1 then extrapolates from the soft fidelity solution towards the detailed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gendr_pix import SHUFFLE, GenDRPix, resize
from gendr_pix.ensemble import on_shifted_grid

from .artifacts import artifact_loss
from .discriminators import FeatureDiscriminator
from .fourier import FOURIER_COMPARE, masked_fourier_loss
from .latent import LatentTeacher, StageOneStudent
from .losses import generator_adv_loss, l1, random_pad


@dataclass(frozen=True, kw_only=True)
class LossConfig:
    l1: float = 1.0
    perceptual: float = 1.0
    """LPIPS weight (paper stage II: 1)."""
    perceptual_net: str = "alexnet"
    dists: float = 0.0
    """DISTS weight on the positive branch (0 = off). DISTS compares feature means/variances
    (texture) and correlations (structure), so unlike LPIPS it does not punish plausible texture
    that is not pixel-aligned; it runs a full-resolution VGG16, ~15x the small UNet's cost on the CPU."""
    dists_crop: int = 0
    """Score DISTS on one random `dists_crop`-px window per step (same place in output and target) to
    bound that cost; 0 = the whole crop."""
    adversarial: float = 0.05
    """Paper: 0.05 in both stages."""
    fourier: float = 0.1
    """Masked Fourier loss weight (paper stage II: 0.1)."""
    fourier_radius: float = 0.0
    fourier_log: bool = False
    fourier_window: int = 0
    """Score the masked Fourier term per `fourier_window`-px tile (a multiple of 8; 0 = the whole crop),
    so a faint 8x8 pattern on a smooth patch is not hidden by texture elsewhere in the crop."""
    fourier_compare: str = "amplitude"
    """What the Fourier term compares at the grid bins: "amplitude" (paper), "complex" (the 8-periodic
    part of the error; also charges for a wrong phase) or "excess" (only periodic content that is worse
    than empty bins); see `masked_fourier_loss`."""
    fourier_margin: float = 1.0
    """With "excess": the share of the target's own grid-bin amplitude an error may reach for free
    (1 = empty bins are free; 0.5 = they cost half of what "complex" charges; 0 = "complex")."""
    adversarial_start: int = 0
    """Step from which the adversarial term is on (a short warm-up lets the generator settle first)."""
    negative_share: float = 0.25
    """Share of each batch trained with the negative embedding on the fidelity-only loss (0 = off)."""
    negative_blur: float = 0.0
    """Gaussian std (output pixels) of the negative branch's soft target: the target low-passed, so the
    two conditions have clearly different optima and the network must use the condition (at 0 both
    branches chase the same ground truth and, measured, guidance stays inert)."""
    sharpen_target: float = 0.0
    """Unsharp-mask amount for the positive branch's target in L1, LPIPS, DISTS and (see
    `sharpen_fourier`) the Fourier term (0 = off; Real-ESRGAN x4plus trains with 0.5, its
    `l1_gt_usm`/`percep_gt_usm`): a regression to a sharper target counters the blur of averaging over
    plausible answers. The discriminator still sees the unsharpened photo as real, so it cannot reward
    the overshoot."""
    artifacts: float = 0.0
    """Weight of `artifacts.artifact_loss` on the positive branch, against the plain photo (0 = off):
    overshoot beyond the photo's local range near its edges (halos) plus edge strength where the photo
    has no edge (ghost contours, block edges). LPIPS, DISTS and the adversarial term reward sharpness
    and barely charge for either; this charges exactly what `eval` reports as halo and false edges."""
    shift_consistency: float = 0.0
    """Weight of the L1 between the positive output and the output for the same input shifted against
    the 8x8 shuffle grid by a random (dy, dx) and cropped back (0 = off). A one-step pixel-shuffle model
    can draw faint strokes (on skin, in flat areas) whose place depends on where the grid falls: they
    move under a 4-px shift, so only the 4-pass self-ensemble averages them out. This charges for them
    directly, at the cost of one more pass of the positive half of the batch."""
    sharpen_fourier: bool = True
    """With `sharpen_target`: whether the masked Fourier term compares against the sharpened photo too
    (phase 12: yes). The unsharp mask raises the amplitude at the 8x8-grid frequencies, which the grid
    score measures against the plain photo, so `false` keeps the Fourier term on the plain spectrum."""

    def __post_init__(self) -> None:
        if self.sharpen_target < 0:
            raise ValueError(f"loss.sharpen_target must be >= 0, got {self.sharpen_target}")
        if self.fourier_window < 0 or self.fourier_window % SHUFFLE:
            raise ValueError(f"loss.fourier_window must be 0 or a positive multiple of {SHUFFLE}, "
                             f"got {self.fourier_window}")
        if self.fourier_compare not in FOURIER_COMPARE:
            raise ValueError(f"loss.fourier_compare must be one of {', '.join(FOURIER_COMPARE)}, "
                             f"got {self.fourier_compare!r}")
        if self.fourier_log and self.fourier_compare != "amplitude":
            raise ValueError("loss.fourier_log works with loss.fourier_compare = 'amplitude' only")
        if not 0.0 <= self.fourier_margin <= 1.0 or (self.fourier_margin != 1.0 and self.fourier_compare != "excess"):
            raise ValueError(f"loss.fourier_margin must be in [0, 1] and works with loss.fourier_compare = "
                             f"'excess' only, got {self.fourier_margin} with {self.fourier_compare!r}")


@dataclass
class StepOutput:
    loss: Tensor
    logs: dict[str, float]
    real: Tensor | None = None
    """What the discriminator should call real / fake this step (detached), or None (no D step)."""
    fake: Tensor | None = None
    preview: Tensor | None = None
    """[B, 3, H, W] in [-1, 1] for sample grids."""


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, C, H, W], reflect-padded, radius 3 sigma. Float32 also under
    bfloat16 autocast (`run.precision`): it shapes the targets, which must stay exact."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32, device=x.device).pow(2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    with torch.autocast(x.device.type, enabled=False):
        x = F.conv2d(F.pad(x.float(), (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                     groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


USM_SIGMA = 8.0
"""Real-ESRGAN's USM blur: OpenCV's default sigma for its 51-px kernel."""
USM_THRESHOLD = 10 / 255
"""Detail smaller than this (in [0, 1] units) is left alone, so flat areas and noise stay unsharpened."""


def unsharp_mask(x: Tensor, amount: float) -> Tensor:
    """Real-ESRGAN's USM of [B, C, H, W] in [-1, 1]: x + amount * (x - blur(x)), clamped, blended in only
    where the detail exceeds `USM_THRESHOLD` (through a blurred mask, so without hard seams)."""
    residual = x - gaussian_blur(x, USM_SIGMA)
    mask = gaussian_blur((residual.abs() / 2 > USM_THRESHOLD).to(x.dtype), USM_SIGMA)
    return mask * (x + amount * residual).clamp(-1, 1) + (1 - mask) * x


def random_window(a: Tensor, b: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The same random `size` x `size` window of two [B, C, H, W] tensors (both whole if size is 0 or
    not smaller than the image)."""
    h, w = a.shape[-2:]
    if not size or size >= min(h, w):
        return a, b
    y, x = (int(torch.randint(0, n - size + 1, ())) for n in (h, w))
    return a[..., y:y + size, x:x + size], b[..., y:y + size, x:x + size]


def lq_to_input(lq: Tensor, size: tuple[int, int]) -> Tensor:
    """LQ [B, 3, h, w] in [0, 1] -> model input: bicubic (antialiased) to the output size, in [-1, 1]."""
    return resize(lq, size).clamp(0, 1) * 2 - 1


def shifted_output(model: nn.Module, x: Tensor, ctx: Tensor) -> Tensor:
    """`model`'s output for `x` moved against the 8x8 grid by a random non-zero (dy, dx), cropped back
    into place (same shape as model(x, ctx)); see `LossConfig.shift_consistency`."""
    offset = int(torch.randint(1, SHUFFLE * SHUFFLE, ()))
    return on_shifted_grid(lambda t: model(t, ctx), x, offset // SHUFFLE, offset % SHUFFLE)


class PixelObjective:
    def __init__(self, model: GenDRPix, loss: LossConfig, *, perceptual: nn.Module | None,
                 discriminator: FeatureDiscriminator | None,
                 target_fn: Callable[[Tensor], Tensor] | None = None, dists: nn.Module | None = None) -> None:
        self.generator, self.cfg, self.perceptual = model, loss, perceptual
        self.discriminator, self.target_fn, self.dists = discriminator, target_fn, dists

    def split(self, batch: int) -> int:
        """Number of positive samples in a batch (at least one)."""
        return max(1, batch - int(round(batch * self.cfg.negative_share)))

    def __call__(self, model: nn.Module, batch: dict[str, Tensor], step: int) -> StepOutput:
        cfg = self.cfg
        hq = batch["hq"]
        x = lq_to_input(batch["lq"], hq.shape[-2:])
        with torch.no_grad():
            target = hq * 2 - 1 if self.target_fn is None else self.target_fn(x)
        n_pos = self.split(x.shape[0])
        inner = getattr(model, "module", model)
        ctx = torch.cat([inner.positive.expand(n_pos, -1, -1), inner.negative.expand(x.shape[0] - n_pos, -1, -1)])
        out = model(x, ctx)
        pos, neg, t_pos, t_neg = out[:n_pos], out[n_pos:], target[:n_pos], target[n_pos:]
        if cfg.negative_blur and t_neg.shape[0]:
            t_neg = gaussian_blur(t_neg, cfg.negative_blur)
        real = t_pos
        if cfg.sharpen_target:
            t_pos = unsharp_mask(t_pos, cfg.sharpen_target)
        t_fourier = t_pos if cfg.sharpen_fourier else real
        logs: dict[str, float] = {}
        fidelity = l1(pos, t_pos)
        total, logs["l1"] = cfg.l1 * fidelity, fidelity.item()
        if cfg.perceptual and self.perceptual is not None:
            p = self.perceptual(pos, t_pos).mean()
            total, logs["lpips"] = total + cfg.perceptual * p, p.item()
        if cfg.dists and self.dists is not None:
            a, b = random_window(pos, t_pos, cfg.dists_crop)
            d = self.dists((a + 1) / 2, (b + 1) / 2).mean()
            total, logs["dists"] = total + cfg.dists * d, d.item()
        if cfg.fourier:
            f = masked_fourier_loss(pos, t_fourier, radius=cfg.fourier_radius, log_amplitude=cfg.fourier_log,
                                    window=cfg.fourier_window, compare=cfg.fourier_compare, margin=cfg.fourier_margin)
            total, logs["fourier"] = total + cfg.fourier * f, f.item()
        if cfg.artifacts:
            a = artifact_loss(pos, real)
            total, logs["artifacts"] = total + cfg.artifacts * a, a.item()
        if cfg.shift_consistency:
            c = l1(pos, shifted_output(model, x[:n_pos], ctx[:n_pos]))
            total, logs["shift"] = total + cfg.shift_consistency * c, c.item()
        if cfg.adversarial and self.discriminator is not None and step >= cfg.adversarial_start:
            g = generator_adv_loss(self.discriminator(random_pad(pos)))
            total, logs["g_adv"] = total + cfg.adversarial * g, g.item()
        if neg.shape[0]:
            neg_l1 = l1(neg, t_neg)
            n = neg_l1 + (cfg.fourier * masked_fourier_loss(neg, t_neg, radius=cfg.fourier_radius,
                                                            window=cfg.fourier_window, compare=cfg.fourier_compare,
                                                            margin=cfg.fourier_margin)
                          if cfg.fourier else 0)
            total, logs["neg_l1"] = total + n * (x.shape[0] - n_pos) / n_pos, neg_l1.item()
        logs["loss"] = total.item()
        return StepOutput(total, logs, real=real.detach(), fake=pos.detach(),
                          preview=torch.cat([x[:1], out[:1].detach(), target[:1]]))


class StageOneObjective:
    """L1(z_teacher, z_student) + adversarial on the teacher UNet's features (paper, stage I)."""

    def __init__(self, student: StageOneStudent, teacher: LatentTeacher, loss: LossConfig,
                 discriminator: FeatureDiscriminator | None) -> None:
        self.generator, self.teacher, self.cfg, self.discriminator = student, teacher, loss, discriminator
        self.teacher.requires_grad_(False).eval()

    def __call__(self, model: nn.Module, batch: dict[str, Tensor], step: int) -> StepOutput:
        hq = batch["hq"]
        x = lq_to_input(batch["lq"], hq.shape[-2:])
        with torch.no_grad():
            z_t = self.teacher.latent(x)
        z_s = model(x)
        loss = self.cfg.l1 * l1(z_s, z_t)
        logs = {"l1": l1(z_s, z_t).item()}
        if self.cfg.adversarial and self.discriminator is not None and step >= self.cfg.adversarial_start:
            g = generator_adv_loss(self.discriminator(random_pad(z_s)))
            loss, logs["g_adv"] = loss + self.cfg.adversarial * g, g.item()
        logs["loss"] = loss.item()
        with torch.no_grad():
            preview = torch.cat([x[:1], self.teacher.vae.decode(z_s[:1].detach()), self.teacher.vae.decode(z_t[:1])])
        return StepOutput(loss, logs, real=z_t.detach(), fake=z_s.detach(), preview=preview)
