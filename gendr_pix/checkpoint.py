"""Checkpoint files: our self-describing safetensors format, and foreign UNet files converted on load.

Our format: a `.safetensors` file whose metadata key `gendr_pix` holds JSON
`{"format_version": 1, "architecture": "gendr-pix", "config": ModelConfig}` and whose tensors are
`unet.<diffusers key>`, `positive` and `negative` ([1, L, context_dim] prompt embeddings).

Also accepted: a 192-channel SD2.1-shaped UNet in the diffusers or LDM key layout (safetensors, or a
pickle loaded with `weights_only=True`). Everything else raises `CheckpointError`, which names the
file, what it looks like, and what was expected.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import Tensor

from .config import PIXEL_CHANNELS, ConfigError, ModelConfig, UNetConfig
from .layouts import StateDict, detect_layout, infer_unet_config, ldm_to_diffusers, strip_prefixes
from .model import GenDRPix

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARCHITECTURE = "gendr-pix"
METADATA_KEY = "gendr_pix"
EXPECTED = (
    f"a GenDR-Pix checkpoint: a pixel-space SD2.1-shaped UNet with {PIXEL_CHANNELS} input/output channels "
    "(our .safetensors format, or a diffusers/LDM UNet state dict)"
)
DEFAULT_MODEL = Path(__file__).parent / "weights" / "gendr-pix-small-x4.safetensors"
"""The small x4 model shipped inside the package (trained by this repo's own training code)."""
_CONTAINER_KEYS = ("state_dict", "params_ema", "params", "model", "module", "ema", "unet")


class CheckpointError(ValueError):
    """A file is not a loadable GenDR-Pix checkpoint. The message names the file, what was found,
    what was expected and, where there is one, the fix."""

    def __init__(self, path: str | os.PathLike, found: str, expected: str = EXPECTED, fix: str = "") -> None:
        self.path, self.found, self.expected, self.fix = str(path), found, expected, fix
        message = f"{self.path}: {found}. Expected {expected}."
        super().__init__(f"{message} {fix}".strip())


def save_model(model: GenDRPix, path: str | os.PathLike, *, dtype: torch.dtype | None = torch.float16) -> None:
    """Write `model` in our format. Written to a temporary file first, so an existing file is never
    left half-written. `dtype=None` keeps the parameters' dtype."""
    tensors = {f"unet.{k}": v for k, v in model.unet.state_dict().items()}
    tensors["positive"], tensors["negative"] = model.positive.data, model.negative.data
    tensors = {k: (v if dtype is None else v.to(dtype)).detach().cpu().contiguous() for k, v in tensors.items()}
    header = {"format_version": FORMAT_VERSION, "architecture": ARCHITECTURE, "config": model.config.to_dict()}
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _file_mode(path: Path) -> int:
    """The existing file's mode, else 0666 minus the process umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def load_model(
    path: str | os.PathLike, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
    config_overrides: dict[str, Any] | None = None,
) -> GenDRPix:
    """Load a checkpoint in any supported layout into an eval-mode `GenDRPix`.

    `dtype=None` means float32. `config_overrides` sets ModelConfig fields a foreign file cannot
    declare (prediction, timestep, alpha_bar, scale; `unet.head_dim`/`unet.norm_groups` via a nested dict "unet").
    Raises CheckpointError for anything that is not a GenDR-Pix-shaped checkpoint.
    """
    path = Path(path)
    tensors, metadata = read_tensors(path)
    header = _parse_header(path, metadata)
    if header is not None:
        config, unet_sd, embeddings = _from_our_format(path, header, tensors)
    else:
        config, unet_sd, embeddings = _from_foreign(path, tensors)
    if config_overrides:
        merged = config.to_dict()
        unet_over = dict(config_overrides).pop("unet", {})
        merged.update({k: v for k, v in config_overrides.items() if k != "unet"})
        merged["unet"].update(unet_over)
        config = _config_or_error(path, merged)
    shape = (1, config.context_tokens, config.unet.context_dim)
    full = {f"unet.{k}": v for k, v in unet_sd.items()}
    for name in ("positive", "negative"):
        value = embeddings.get(name, torch.zeros(shape))
        if value.numel() != shape[1] * shape[2]:
            raise CheckpointError(path, f"'{name}' embedding has shape {tuple(value.shape)}",
                                  f"shape {shape} for context_dim={config.unet.context_dim}")
        full[name] = value.reshape(shape)
    with torch.device("meta"):  # no random init, no second copy: the file's tensors become the weights
        model = GenDRPix(config)
    try:
        result = model.load_state_dict(full, strict=False, assign=True)
    except RuntimeError as e:  # shape mismatches
        detail = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(path, f"tensors whose shapes do not fit the config ({detail})") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(path, _key_problem(result.missing_keys, result.unexpected_keys))
    model = model.to(device=device, dtype=dtype or torch.float32).eval().requires_grad_(False)
    _align_storage(model)
    model.source = str(path)
    return model


def _align_storage(model: torch.nn.Module) -> None:
    """Give every tensor its own aligned storage.

    Tensors read from a safetensors file can sit at unaligned offsets of one buffer; CPU kernels then
    take other code paths (slower, and not bit-identical to the same weights elsewhere).
    """
    for p in model.parameters():
        if p.device.type == "cpu" and p.data_ptr() % 64:
            p.data = p.data.clone()


def load_default_model(**kwargs: Any) -> GenDRPix:
    """Load the bundled default model (`DEFAULT_MODEL`); keyword arguments as for `load_model`."""
    if not DEFAULT_MODEL.is_file():
        raise CheckpointError(DEFAULT_MODEL, "no bundled default model in this installation",
                              fix="Pass a model file explicitly (CLI: --model PATH).")
    return load_model(DEFAULT_MODEL, **kwargs)


def read_tensors(path: str | os.PathLike) -> tuple[StateDict, dict[str, str] | None]:
    """Read every tensor and the safetensors metadata (None for pickles) from a checkpoint file.

    The format is decided from the file's first bytes, not its name. Pickles load only with
    `weights_only=True`; a container dict (`state_dict`, `params_ema`, ...) is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file", fix="Check the path, or put the file in models/gendr_pix.")
    with open(path, "rb") as f:
        head = f.read(16)
    if _looks_like_safetensors(head, path.stat().st_size):
        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata()
            return load_file(path, device="cpu"), metadata
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, f"a truncated or corrupt safetensors file ({e})",
                                  fix="Download or copy the file again.") from None
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return _read_pickle(path), None
    size = path.stat().st_size
    raise CheckpointError(path, f"neither safetensors nor a PyTorch pickle ({size} bytes, starts with {head[:8]!r})")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 0 < n


def _read_pickle(path: Path) -> StateDict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            path, f"a pickle that cannot be loaded safely ({first})",
            fix="Only plain tensor state dicts are loaded (weights_only=True); convert it to .safetensors.",
        ) from None
    for _ in range(3):  # nested containers, e.g. {"model": {"state_dict": ...}, "global_step": ...}
        if isinstance(obj, dict):
            inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(path, f"a pickle holding {type(obj).__name__}, not a dict of tensors")
    return dict(obj)


def _parse_header(path: Path, metadata: dict[str, str] | None) -> dict[str, Any] | None:
    if not metadata or METADATA_KEY not in metadata:
        return None
    try:
        header = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(path, f"metadata '{METADATA_KEY}' is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("architecture") != ARCHITECTURE:
        arch = header.get("architecture") if isinstance(header, dict) else header
        raise CheckpointError(path, f"metadata for architecture {arch!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r}", f"format version <= {FORMAT_VERSION}",
                              fix="Update GenDR-Pix to read this file.")
    return header


def _config_or_error(path: Path, data: dict[str, Any]) -> ModelConfig:
    try:
        return ModelConfig.from_dict(data)
    except ConfigError as e:
        raise CheckpointError(path, f"an invalid model config ({e})") from None


def _from_our_format(path: Path, header: dict[str, Any], tensors: StateDict):
    config = _config_or_error(path, header.get("config", {}))
    unet_sd = {k[len("unet."):]: v for k, v in tensors.items() if k.startswith("unet.")}
    missing = [k for k in ("positive", "negative") if k not in tensors]
    if missing:
        raise CheckpointError(path, f"a GenDR-Pix file without the {' and '.join(missing)} embedding")
    try:
        found = infer_unet_config(unet_sd, head_dim=config.unet.head_dim, norm_groups=config.unet.norm_groups)
    except (KeyError, ValueError, ConfigError) as e:
        raise CheckpointError(path, f"a GenDR-Pix file with incomplete UNet weights ({e})") from None
    if found != config.unet:
        diff = _config_diff(config.unet, found)
        raise CheckpointError(path, f"metadata that disagrees with the tensors ({diff})",
                              "the config in the metadata to describe the stored tensors")
    return config, unet_sd, {"positive": tensors["positive"], "negative": tensors["negative"]}


def _from_foreign(path: Path, tensors: StateDict):
    found = describe_foreign(tensors)
    if found is not None:
        raise CheckpointError(path, found)
    sd = strip_prefixes(tensors)
    layout = detect_layout(sd)
    if layout is None:
        sample = ", ".join(sorted(tensors)[:4])
        raise CheckpointError(path, f"an unrecognised state dict ({len(tensors)} tensors; first keys: {sample})")
    if layout == "ldm":
        sd = ldm_to_diffusers(sd)
    channels = sd["conv_in.weight"].shape[1]
    if channels != PIXEL_CHANNELS:
        kind = {4: "a latent SD1.x/2.x UNet", 16: "a latent UNet for a 16-channel VAE",
                7: "SD's x4 latent upscaler", 9: "an SD inpainting UNet"}.get(channels, "a UNet")
        raise CheckpointError(path, f"{kind} with {channels} input channels ({layout} layout)")
    try:
        unet_cfg = infer_unet_config(sd)
    except (KeyError, ValueError, ConfigError) as e:
        raise CheckpointError(path, f"a {layout}-layout UNet with missing or odd tensors ({e})") from None
    embeddings = {k: tensors[k] for k in ("positive", "negative") if k in tensors}
    sd = {k: v for k, v in sd.items() if k not in ("positive", "negative")}
    if len(embeddings) < 2:
        log.warning("%s: no positive/negative embeddings stored; using zeros (guidance has no effect)", path)
    tokens = embeddings["positive"].shape[-2] if "positive" in embeddings and embeddings["positive"].ndim >= 2 else 77
    return ModelConfig(unet=unet_cfg, context_tokens=tokens), sd, embeddings


def describe_foreign(tensors: StateDict) -> str | None:
    """Name well-known non-GenDR-Pix checkpoint kinds from their keys, or None if it may be a UNet."""
    keys = tensors.keys()
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    if has("first_stage_model.") or (has("model.diffusion_model.") and has("cond_stage_model.")):
        return "a full Stable Diffusion checkpoint (UNet + VAE + text encoder), i.e. a latent-space model"
    if has("encoder.conv_in.") and has("decoder.conv_in."):
        return "a VAE (autoencoder), not a UNet"
    if has("conv_first.") or has("body.0.rdb1.") or has("model.1.sub.0.RDB1.") or "model.0.weight" in keys:
        return "an ESRGAN-family upscaler (use ComfyUI's 'Upscale Image (using Model)' for it)"
    if has("text_model.") or has("transformer.resblocks."):
        return "a text encoder"
    return None


def _config_diff(expected: UNetConfig, found: UNetConfig) -> str:
    a, b = expected.__dict__, found.__dict__
    return "; ".join(f"{k}: metadata {a[k]!r}, tensors {b[k]!r}" for k in a if a[k] != b[k])


def _key_problem(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing UNet tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    return "a UNet with " + " and ".join(parts)
