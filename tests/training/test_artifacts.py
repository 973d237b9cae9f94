"""The artifact scores catch what they claim to, and score the ground truth (and a plain blur) zero."""

import numpy as np
import pytest
import torch

from gendr_pix.training.artifacts import artifact_loss, false_edges, halo
from gendr_pix.training.deadleaves import dead_leaves
from gendr_pix.training.fourier import grid_score
from gendr_pix.training.objectives import gaussian_blur


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A stand-in photo: dead leaves (flat regions, edges of every orientation), softened like a lens."""
    rng = np.random.default_rng(0)
    colors = rng.uniform(0.1, 0.9, (64, 3))
    img = dead_leaves(192, rng, colors, r_min=20.0, texture_prob=0.0)[None]
    return (gaussian_blur(img * 2 - 1, 0.8) + 1) / 2


def unsharp(img: torch.Tensor, amount: float = 1.0, sigma: float = 2.0) -> torch.Tensor:
    return (img + amount * (img - (gaussian_blur(img * 2 - 1, sigma) + 1) / 2)).clamp(0, 1)


def ghost(img: torch.Tensor, shift: int = 12, weight: float = 0.25) -> torch.Tensor:
    """The photo with a faint copy of itself moved by `shift` px: double contours."""
    return (1 - weight) * img + weight * torch.roll(img, (shift, shift), (2, 3))


def blocks(img: torch.Tensor, level: float = 3 / 255) -> torch.Tensor:
    """A planted 8x8 pattern, the pixel-shuffle's block texture."""
    pattern = torch.tensor([1.0, -1.0]).repeat(4).view(1, 1, 1, 8) * torch.linspace(-1, 1, 8).view(1, 1, 8, 1)
    return (img + level * pattern.repeat(1, 3, img.shape[-2] // 8, img.shape[-1] // 8)).clamp(0, 1)


def soft(img: torch.Tensor) -> torch.Tensor:
    return (gaussian_blur(img * 2 - 1, 1.5) + 1) / 2


def test_ground_truth_scores_zero(photo):
    assert halo(photo, photo).item() == 0
    assert false_edges(photo, photo).item() == 0
    assert artifact_loss(photo * 2 - 1, photo * 2 - 1).item() == 0


def test_a_blurred_copy_has_neither_halo_nor_false_edges(photo):
    # a soft result is a different failure; these scores must not call it an artifact
    assert halo(soft(photo), photo).item() < 0.05
    assert false_edges(soft(photo), photo).item() < 0.05


def test_halo_catches_an_unsharp_mask(photo):
    score = halo(unsharp(photo), photo).item()
    assert score > 1.0  # mean overshoot in 8-bit levels near edges
    assert score > 20 * halo(soft(photo), photo).item() + 1


def test_false_edges_catch_a_faint_shifted_duplicate(photo):
    score = false_edges(ghost(photo), photo).item()
    assert score > 2.0  # % of the photo's own edge strength
    # a sharper (unsharp-masked) drawing of the real edges is not a false edge
    assert score > 3 * false_edges(unsharp(photo), photo).item()


def test_grid_score_catches_planted_blocks_per_photo(photo):
    assert grid_score(blocks(photo), photo).item() > 2
    assert abs(grid_score(photo, photo).item() - 1) < 1e-6


def test_scores_are_per_image_and_reject_mismatched_shapes(photo):
    pair = torch.cat([photo, ghost(photo)])
    scores = false_edges(pair, torch.cat([photo, photo]))
    assert scores.shape == (2,) and scores[0] == 0 and scores[1] > 2
    with pytest.raises(ValueError, match="one shape"):
        halo(photo, photo[..., :64])


def test_artifact_loss_pushes_the_output_back_towards_the_range(photo):
    out = (unsharp(photo) * 2 - 1).requires_grad_(True)
    target = photo * 2 - 1
    for _ in range(20):
        loss = artifact_loss(out, target)
        (grad,) = torch.autograd.grad(loss, out)
        out = (out - 2000 * grad).detach().requires_grad_(True)
    assert halo((out + 1) / 2, photo).item() < 0.5 * halo(unsharp(photo), photo).item()
