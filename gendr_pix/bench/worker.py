"""Measure one benchmark case, in this process or as `python -m gendr_pix.bench.worker SPEC OUT`.

A fresh process per case is what makes the CPU's peak-RSS figure honest: glibc keeps freed memory
mapped, so a second case in the same process would inherit the first one's high-water mark.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import sys
import time
from typing import Any

import torch

from ..memory import module_bytes, simulate_peak
from .measure import load_average, rss_bytes, synchronize, tensor_peak, time_runs
from .pipelines import Built, Case, Variant, build, flops

log = logging.getLogger(__name__)


def case_to_dict(case: Case) -> dict[str, Any]:
    d = dataclasses.asdict(case)
    d["variant"] = case.variant.name
    return d


def case_from_dict(d: dict[str, Any]) -> Case:
    return Case(**{**d, "variant": Variant.parse(d["variant"])})


def input_bytes(built: Built) -> int:
    return sum(t.untyped_storage().nbytes() for t in built.inputs)


def measure_case(case: Case, device: torch.device, *, warmup: int, repeats: int,
                 fresh_process: bool = False) -> dict[str, Any]:
    """Latency, peak memory and FLOPs of one case. Errors (e.g. out of memory) are recorded, not raised.

    The first call is the warm-up that pays one-off costs (oneDNN primitives, compilation); it is
    also the one run under the tensor-memory tracker (not with `compile`), so tracking overhead never
    enters a timing. Then `warmup - 1` more untimed calls, then `repeats` timed ones.
    `fresh_process`: this process ran nothing else, so its peak RSS is this case's (see module doc).
    """
    result: dict[str, Any] = {**case_to_dict(case), "label": case.label, "device": str(device)}
    count = flops(case)
    result.update(flops=count.total, flops_attention=count.attention, flops_conv=count.conv,
                  flops_linear=count.linear, flops_layers=count.layer_flops)
    result["load_before"] = load_average()
    rss_start = rss_bytes("VmRSS")
    try:
        with torch.inference_mode():
            built = build(case, device)
            weights = module_bytes(*built.modules)
            result["weights_bytes"] = weights
            held = weights + input_bytes(built)
            synchronize(device)
            start = time.perf_counter()
            if case.variant.compile:
                built.run()
            else:
                result["peak_tensor_bytes"] = tensor_peak(built.run, held, device)
            synchronize(device)
            result["first_run_s"] = time.perf_counter() - start
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            timing = time_runs(built.run, device, warmup=max(0, warmup - 1), repeats=repeats)
            if device.type == "cuda":
                result["peak_cuda_bytes"] = torch.cuda.max_memory_allocated(device)
    except (torch.OutOfMemoryError, RuntimeError) as e:
        log.warning("%s failed: %s", case.label, str(e).splitlines()[0])
        result["error"] = str(e).splitlines()[0][:300]
        return result
    finally:
        result["load_after"] = load_average()
        gc.collect()
    result.update(latency_s=timing.median_s, runs_s=list(timing.runs_s),
                  achieved_flops_per_s=count.total / timing.median_s)
    hwm = rss_bytes("VmHWM")
    if fresh_process and hwm is not None and rss_start is not None:
        result["peak_rss_delta_bytes"] = hwm - rss_start
    return result


def simulate_case(case: Case) -> dict[str, Any]:
    """Peak memory of one case without running it: the same build and forward on the `meta` device
    under `PeakTensorMemory` (weights + inputs + the largest sum of live activations), which equals the
    tracked peak of a real CPU run (tests). Seconds at any size, so it reaches sizes too slow to time
    here, such as the paper's 4K. `compile` is ignored; `upscale` is not simulated (it plans tiles
    from the free memory of a real device)."""
    if case.pipeline == "upscale":
        raise ValueError("the upscale pipeline cannot be simulated; use pixel, latent or padcfg")
    meta_case = dataclasses.replace(case, variant=dataclasses.replace(case.variant, compile=False))
    with torch.inference_mode():
        built = build(meta_case, torch.device("meta"))
        weights = module_bytes(*built.modules)
        peak = weights + input_bytes(built) + simulate_peak(built.run)
    return {**case_to_dict(case), "label": case.label, "device": "meta", "simulated": True,
            "weights_bytes": weights, "peak_tensor_bytes": peak}


def main(argv: list[str]) -> int:
    """argv: [spec JSON, output path]. spec: {case, device, warmup, repeats, threads}."""
    spec = json.loads(argv[0])
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    result = measure_case(case_from_dict(spec["case"]), torch.device(spec["device"]),
                          warmup=spec["warmup"], repeats=spec["repeats"], fresh_process=True)
    with open(argv[1], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    sys.exit(main(sys.argv[1:]))
