import pytest
import torch
import torch.nn.functional as F

from gendr_pix.training.fourier import grid_mask, grid_score, masked_fourier_loss


def _natural(seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(2, 3, size, size)
    for s in (4, 8, 16, 32):  # 1/f-like: sum of upsampled noise octaves
        x += F.interpolate(torch.rand(2, 3, size // s, size // s, generator=g), size=(size, size),
                           mode="bicubic", align_corners=False) / (64 // s)
    return x.clamp(0, 1)


def _planted(size=64, amp=0.03):
    tile = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3)) - 0.5
    return amp * 2 * tile.repeat(1, size // 8, size // 8)[None]


def test_mask_opens_only_at_grid_frequencies():
    m = grid_mask(64, 64)
    assert m.sum() == 63  # 8 x 8 grid bins minus DC
    assert not m[0, 0] and m[8, 0] and m[8, 8] and not m[4, 0]
    assert grid_mask(64, 64, radius=1).sum() > m.sum()


def test_fourier_loss_reacts_to_8_periodic_artifacts_not_to_ordinary_detail():
    target = _natural()
    artifact = target + _planted()
    # Ordinary detail of the same energy: a different natural texture, not locked to the grid.
    detail = _natural(seed=5) - _natural(seed=5).mean()
    detail = target + detail * (_planted().pow(2).mean() / detail.pow(2).mean()).sqrt()
    base = masked_fourier_loss(target, target)
    on_artifact = masked_fourier_loss(artifact, target)
    on_detail = masked_fourier_loss(detail, target)
    assert base == 0
    assert on_artifact > 10 * on_detail
    assert torch.allclose(F.l1_loss(artifact, target), F.l1_loss(detail, target), rtol=0.6)


def test_fourier_loss_options_and_gradient():
    target = _natural()
    out = (target + _planted()).requires_grad_(True)
    loss = masked_fourier_loss(out, target, radius=1, log_amplitude=True)
    loss.backward()
    assert loss > 0 and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_grid_score_is_one_for_ground_truth_and_grows_with_artifacts():
    gt = _natural()
    assert torch.allclose(grid_score(gt, gt), torch.ones(2))
    assert (grid_score(gt + _planted(), gt) > 2).all()


def test_windowed_fourier_loss_sees_a_faint_pattern_on_a_smooth_patch_whatever_the_texture_around():
    g = torch.Generator().manual_seed(0)
    textured = torch.rand(1, 3, 256, 256, generator=g) * 0.4 + 0.3
    textured[..., :64, :64] = 0.5  # one smooth tile
    smooth = torch.full_like(textured, 0.5)
    pattern = torch.zeros_like(textured)
    pattern[..., :64, :64] = _planted(64, amp=0.01)
    whole = [masked_fourier_loss(t + pattern, t) for t in (textured, smooth)]
    tiled = [masked_fourier_loss(t + pattern, t, window=64) for t in (textured, smooth)]
    assert whole[0] < 0.8 * whole[1]  # over the whole crop the texture elsewhere hides part of it
    assert torch.allclose(tiled[0], tiled[1], rtol=1e-4)  # per tile it costs the same
    assert masked_fourier_loss(textured, textured, window=64) == 0
    odd = masked_fourier_loss(textured[..., :250, :250] + pattern[..., :250, :250], textured[..., :250, :250],
                              window=64)
    assert torch.allclose(odd, tiled[0] * 16 / 9, rtol=1e-4)  # the 3x3 whole tiles only
    with pytest.raises(ValueError, match="multiple of 8"):
        masked_fourier_loss(textured, textured, window=60)


def test_complex_and_excess_modes_charge_a_pattern_of_the_right_amplitude_and_the_wrong_phase():
    flat = torch.full((1, 3, 64, 64), 0.5)
    pattern = _planted(64, amp=0.05)
    target = flat + pattern  # a photo with real 8-periodic content (blinds, a fence)
    shifted = flat + pattern.roll(shifts=(3, 5), dims=(-2, -1))  # same spectrum amplitude, other phase
    assert masked_fourier_loss(shifted, target) < 1e-6  # amplitudes cannot see it
    wrong, missing = (masked_fourier_loss(x, target, compare="complex") for x in (shifted, flat))
    assert wrong > missing > 0.1  # complex: worse than leaving the pattern out, which costs too
    wrong, missing = (masked_fourier_loss(x, target, compare="excess") for x in (shifted, flat))
    assert wrong > 0.05 and missing < 1e-6  # excess: empty grid bins are free, a wrong pattern is not
    half = masked_fourier_loss(flat + pattern / 2, target, compare="excess")
    assert half < 1e-6  # closer to the target than empty bins: nothing to charge
    for compare in ("complex", "excess"):
        assert masked_fourier_loss(target, target, compare=compare, window=32) == 0


def test_excess_margin_charges_empty_bins_in_between_excess_and_complex():
    flat = torch.full((1, 3, 64, 64), 0.5)
    pattern = _planted(64, amp=0.05)
    target = flat + pattern
    shifted = flat + pattern.roll(shifts=(3, 5), dims=(-2, -1))
    complex_missing = masked_fourier_loss(flat, target, compare="complex")
    half_missing = masked_fourier_loss(flat, target, compare="excess", margin=0.5)
    assert half_missing == pytest.approx(0.5 * complex_missing.item(), rel=1e-5)  # empty bins cost again
    assert masked_fourier_loss(flat, target, compare="excess", margin=0.0) == pytest.approx(complex_missing.item())
    full = masked_fourier_loss(shifted, target, compare="excess")
    assert masked_fourier_loss(shifted, target, compare="excess", margin=0.5) > full  # a wrong phase costs more
    assert masked_fourier_loss(target, target, compare="excess", margin=0.5, window=32) == 0
    for bad in ({"compare": "excess", "margin": 1.5}, {"compare": "complex", "margin": 0.5}):
        with pytest.raises(ValueError, match="margin must be in \\[0, 1\\] and is used with compare='excess' only"):
            masked_fourier_loss(target, target, **bad)


@pytest.mark.parametrize("compare", ["complex", "excess"])
def test_complex_and_excess_modes_react_to_artifacts_not_to_detail_and_have_a_gradient(compare):
    target = _natural()
    detail = _natural(seed=5) - _natural(seed=5).mean()
    detail = target + detail * (_planted().pow(2).mean() / detail.pow(2).mean()).sqrt()
    out = (target + _planted()).requires_grad_(True)
    on_artifact = masked_fourier_loss(out, target, compare=compare)
    assert on_artifact > 10 * masked_fourier_loss(detail, target, compare=compare)
    on_artifact.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_fourier_loss_names_a_bad_compare_mode():
    target = _natural()
    with pytest.raises(ValueError, match="compare must be one of amplitude, complex, excess, got 'phase'"):
        masked_fourier_loss(target, target, compare="phase")
    with pytest.raises(ValueError, match="log_amplitude works with compare='amplitude' only"):
        masked_fourier_loss(target, target, compare="complex", log_amplitude=True)
