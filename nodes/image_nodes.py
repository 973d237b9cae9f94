"""Image-side nodes: the one-step upscale, and a before/after compare drawn by web/compare.js.

Node ids and input order are frozen: saved workflows store widget values by position.
"""

from __future__ import annotations

from comfy_api.latest import io, ui

from . import comfy_glue as glue
from .model_nodes import CATEGORY, MODEL_IN_TOOLTIP, PixModelType
from .upscale_run import COLOR_FIXES, UpscaleRequest, memory_required, upscale_images


class GenDRPixUpscale(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixUpscale",
            display_name="GenDR-Pix Upscale (one step)",
            category=CATEGORY,
            description="One-step generative super-resolution in pixel space (no VAE). RGB and RGBA, "
                        "batches and video frames; falls back to smaller tiles when memory runs out.",
            inputs=[
                PixModelType.Input("model", tooltip=MODEL_IN_TOOLTIP),
                io.Image.Input("image", tooltip="Images or video frames to upscale (RGB or RGBA; alpha is "
                                                "resized separately)."),
                io.Float.Input("scale", default=4.0, min=1.0, max=8.0, step=0.25, round=0.01,
                               tooltip="Output size / input size. The default model is trained for x4; other "
                                       "factors resize the input first and work, with less detail."),
                io.Int.Input("tile_size", default=0, min=0, max=8192, step=64,
                             tooltip="Tile edge in output pixels. 0 = automatic: the whole image when it fits in "
                                     "free memory, tiles otherwise; a set size needs at least tile_overlap + 64. "
                                     "Halved automatically on out-of-memory."),
                io.Int.Input("tile_overlap", default=64, min=0, max=512, step=8,
                             tooltip="Overlap between tiles in output pixels, blended smoothly. Raise it if "
                                     "you see seams; unused when the image runs whole."),
                io.Combo.Input("color_fix", options=list(COLOR_FIXES), default="none",
                               tooltip="Keep the input's colours: wavelet (low frequencies from the input, "
                                       "recommended against colour shift), adain (per-channel mean/std), none."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The upscaled images (same alpha as input).")],
        )

    @classmethod
    def execute(cls, model, image, scale: float, tile_size: int, tile_overlap: int,
                color_fix: str) -> io.NodeOutput:
        request = UpscaleRequest(scale=scale, tile_size=tile_size, tile_overlap=tile_overlap, color_fix=color_fix)
        glue.place(model, memory_required(model, image, request))
        relay = glue.progress_relay()
        result = upscale_images(model, image, request, progress=relay, should_stop=glue.check_interrupted,
                                available_ram=glue.available_ram())
        relay.finish(result)
        return io.NodeOutput(glue.to_intermediate(result))


class GenDRPixCompare(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixCompare",
            display_name="GenDR-Pix Compare (before/after)",
            category=CATEGORY,
            description="Shows two images with a slider: move the mouse over the node to compare. The first "
                        "image of each batch is shown; the smaller one is stretched to the larger's size.",
            is_output_node=True,
            inputs=[
                io.Image.Input("before", tooltip="Left side, e.g. the low-resolution input."),
                io.Image.Input("after", tooltip="Right side, e.g. the upscaled result."),
            ],
            outputs=[],
        )

    @classmethod
    def execute(cls, before, after) -> io.NodeOutput:
        # Temp files only (like Preview Image); web/compare.js reads these two keys.
        saved = {}
        for side, images in (("before", before), ("after", after)):
            saved[f"gendr_pix_{side}"] = ui.ImageSaveHelper.save_images(
                images[:1], filename_prefix=f"GenDRPix_compare_{side}", folder_type=io.FolderType.temp,
                cls=None, compress_level=1)
        return io.NodeOutput(ui=saved)
