"""How much time does the ComfyUI Upscale node add over calling the core directly? (issue 5)

Runs inside one Python process with ComfyUI's modules importable (no server): loads the bundled
model through the Model Loader node, then times `GenDRPixUpscale.execute` and `gendr_pix.upscale`
with the same options on the same image, alternating, and prints the medians.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/ComfyUI/venv/bin/python scripts/comfyui_overhead.py --size 512
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_pack(comfy_dir: Path):
    sys.argv = [sys.argv[0], "--cpu"]  # as main.py does: parse ComfyUI's own CLI arguments on import
    sys.path.insert(0, str(comfy_dir))
    import comfy.options

    comfy.options.enable_args_parsing()
    spec = importlib.util.spec_from_file_location("gendr_pix_pack", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["gendr_pix_pack"] = pack
    spec.loader.exec_module(pack)
    asyncio.run(pack.comfy_entrypoint())
    from gendr_pix_pack.nodes import image_nodes, model_nodes

    return model_nodes, image_nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="input edge in pixels (output is x4)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shifts", type=int, default=1)
    args = parser.parse_args()
    model_nodes, image_nodes = load_pack(Path(os.environ["COMFYUI_DIR"]))
    import torch

    import gendr_pix

    loaded = model_nodes.GenDRPixModelLoader.execute(f"(bundled) {gendr_pix.DEFAULT_MODEL.name}", "fp32").result[0]
    model = model_nodes.GenDRPixSelfEnsemble.execute(loaded, args.shifts).result[0]
    torch.manual_seed(0)
    image = torch.rand(1, args.size, args.size, 3)  # ComfyUI IMAGE
    options = gendr_pix.UpscaleOptions(scale=4.0, ensemble=args.shifts)

    def node():
        return image_nodes.GenDRPixUpscale.execute(model, image, 4.0, 0, 64, "none").result[0]

    def core():
        return gendr_pix.upscale(model.network, image, options, layout="NHWC")

    assert torch.equal(node(), core())  # same work, same result (also warms both paths up)
    times = {"node": [], "core": []}
    for _ in range(args.repeats):
        for name, fn in (("core", core), ("node", node)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    node_s, core_s = statistics.median(times["node"]), statistics.median(times["core"])
    load = os.getloadavg()[0]
    print(f"{args.size}->{4 * args.size} shifts={args.shifts}: core {core_s:.3f} s, node {node_s:.3f} s, "
          f"overhead {100 * (node_s / core_s - 1):+.1f}% (median of {args.repeats}, load {load:.1f})")


if __name__ == "__main__":
    main()
