"""Progress and stop requests inside one model pass: steps per UNet block, honest totals, prompt stops."""

import pytest
import torch

import gendr_pix as g
from gendr_pix import unet as unet_module
from gendr_pix.unet import Transformer2D


class Recorder:
    """progress(): every call as (done, total, has_preview)."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total, preview):
        self.calls.append((done, total, preview is not None))

    @property
    def steps(self):
        return [c for c in self.calls if not c[2]]

    def assert_monotone_and_complete(self):
        done = [c[0] for c in self.calls]
        totals = [c[1] for c in self.calls]
        assert done == sorted(done) and totals == sorted(totals) and all(d <= t for d, t in zip(done, totals))
        assert done[-1] == totals[-1] and self.calls[-1][2]


def test_one_untiled_pass_reports_every_block(tiny):
    progress = Recorder()
    g.upscale(tiny, torch.rand(1, 3, 12, 10), progress=progress)
    per_pass = tiny.unet.steps_per_pass
    assert per_pass >= 10
    assert progress.steps == [(i, per_pass, False) for i in range(1, per_pass + 1)]  # one pass, one step per block
    assert progress.calls[-1] == (per_pass, per_pass, True)  # the finished image, with its preview


@pytest.mark.parametrize("options, positive", [
    (dict(ensemble=2), None),
    (dict(guidance=g.Guidance(scale=2.0)), None),  # fused into one pass of two images where it fits
    (dict(guidance=g.Guidance(scale=2.0, mode="padcfg")), torch.randn(1, 5, 32)),  # other lengths: two passes
    (dict(ensemble=4, guidance=g.Guidance(scale=1.5), grid_filter=64, tile=64, tile_overlap=32), None),
    (dict(batch_size=2, tile=96, tile_overlap=32), None),
])
def test_the_total_counts_exactly_the_steps_that_run(tiny, options, positive):
    progress = Recorder()
    g.upscale(tiny, torch.rand(3, 3, 20, 24), g.UpscaleOptions(**options), positive=positive, progress=progress)
    progress.assert_monotone_and_complete()
    assert len(progress.steps) == progress.calls[-1][1]  # every step reported once, none left out


def test_a_stop_request_inside_the_pass_stops_it_there(tiny):
    blocks_before_stop = 5
    progress = Recorder()
    with pytest.raises(g.Interrupted):
        g.upscale(tiny, torch.rand(1, 3, 12, 10), progress=progress,
                  should_stop=lambda: len(progress.steps) >= blocks_before_stop)
    assert len(progress.steps) == blocks_before_stop < tiny.unet.steps_per_pass
    assert not any(preview for *_, preview in progress.calls)  # nothing finished


def test_long_attention_is_stoppable_in_chunks_with_the_same_result(tiny, monkeypatch):
    images = torch.rand(1, 3, 32, 32)
    whole = g.upscale(tiny, images)
    monkeypatch.setattr(unet_module, "ATTENTION_CHUNK_MACS", 16 * 16 * 8)  # a few query rows per chunk
    checks = []
    chunked = g.upscale(tiny, images, should_stop=lambda: checks.append(1))
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert len(checks) > 2 * tiny.unet.steps_per_pass  # stop checks inside the attention blocks too


def test_large_convolutions_are_stoppable_in_row_stripes_with_the_same_result(tiny, monkeypatch):
    images = torch.rand(1, 3, 32, 32)
    whole = g.upscale(tiny, images)
    monkeypatch.setattr(unet_module, "CONV_CHUNK_MACS", 1)  # one output row per stripe
    checks = []
    striped = g.upscale(tiny, images, should_stop=lambda: checks.append(1))
    torch.testing.assert_close(striped, whole, atol=1e-5, rtol=0)
    assert len(checks) > 10 * tiny.unet.steps_per_pass  # a check before every stripe
    calls = []
    with pytest.raises(g.Interrupted):  # and a stop request there is honoured at once
        g.upscale(tiny, images, should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4


def test_out_of_memory_inside_a_pass_keeps_progress_monotone(tiny, monkeypatch):
    original = Transformer2D.forward

    def picky(self, x, context):  # out of memory mid-pass, after several blocks, for tiles above 128 px
        if x.device.type != "meta" and x.shape[-1] * 8 * 2 > 128:  # meta: memory planning
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, x, context)

    monkeypatch.setattr(Transformer2D, "forward", picky)
    progress = Recorder()
    g.upscale(tiny, torch.rand(1, 3, 64, 64), g.UpscaleOptions(tile_overlap=32), progress=progress)
    progress.assert_monotone_and_complete()
    assert progress.calls[0][1] < progress.calls[-1][1]  # the total grew with the smaller tiles
    assert len([c for c in progress.calls if c[2]]) > 1  # and they ran


def test_outside_upscale_a_forward_pass_reports_nothing(tiny):
    with torch.inference_mode():
        assert tiny(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
