"""Benchmark of the pixel-space pipeline against the latent (VAE16) one: `python -m gendr_pix bench`.

Modules: `pipelines` (what runs, variants), `flops` (FLOPs on the meta device),
`measure` (timing, machine facts), `worker` (one case, optionally in a
fresh process), `report` (tables), `plot` (PNG from the JSON), `cli` (the command).
"""

from .cli import add_arguments, run

__all__ = ["add_arguments", "run"]
