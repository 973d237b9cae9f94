"""The V3 extension object ComfyUI asks for through `comfy_entrypoint`."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import comfy_glue
from .image_nodes import GenDRPixCompare, GenDRPixUpscale
from .model_nodes import (
    GenDRPixAntiRinging,
    GenDRPixGridFilter,
    GenDRPixGuidance,
    GenDRPixModelLoader,
    GenDRPixSelfEnsemble,
)

NODES: list[type[io.ComfyNode]] = [
    GenDRPixModelLoader, GenDRPixSelfEnsemble, GenDRPixGuidance, GenDRPixGridFilter, GenDRPixAntiRinging,
    GenDRPixUpscale, GenDRPixCompare,
]


class GenDRPixExtension(ComfyExtension):
    async def on_load(self) -> None:  # newer ComfyUI calls this; get_node_list registers too
        comfy_glue.ensure_model_folder()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:  # called once, at startup
        comfy_glue.ensure_model_folder()
        comfy_glue.provide_example_inputs()
        return list(NODES)
