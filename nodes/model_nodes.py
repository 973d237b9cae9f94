"""Model-side nodes: loader, self-ensemble, guidance, grid filter, anti-ringing. Schemas here; logic in model_value.py.

Node ids and input order are frozen: saved workflows store widget values by position.
"""

from __future__ import annotations

from comfy_api.latest import io

from . import comfy_glue as glue
from .model_value import (
    DEFAULT_ANTIRING,
    ENSEMBLE_SIZES,
    GRID_FILTER_WINDOW,
    GUIDANCE_MODES,
    PRECISIONS,
    SETTINGS_TOOLTIP,
    loader_ui,
    with_antiring,
    with_ensemble,
    with_grid_filter,
    with_guidance,
)

CATEGORY = "image/upscaling/GenDR-Pix"
PixModelType = io.Custom("GENDR_PIX_MODEL")

MODEL_IN_TOOLTIP = ("A GenDR-Pix model from the GenDR-Pix Model Loader (optionally through Self-ensemble, Guidance, "
                    "Grid Filter or Anti-ringing).")
MODEL_OUT_TOOLTIP = "The model with this node's setting; the input model is left unchanged."


class GenDRPixModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixModelLoader",
            display_name="GenDR-Pix Model Loader",
            category=CATEGORY,
            description="Loads a GenDR-Pix one-step super-resolution model (pixel space, no VAE). "
                        "Files go in models/gendr_pix (a diffusers folder too: pick its weights file); "
                        "nothing is downloaded.",
            inputs=[
                io.Combo.Input("model_name", options=glue.model_list(),
                               tooltip="Model file from models/gendr_pix (and extra_model_paths.yaml 'gendr_pix:' "
                                       "folders), or the default model bundled with the pack."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="Weight and compute precision. auto: fp32 on the CPU, bf16 (else fp16) on a "
                                       "GPU. fp32 is the reference; half precision halves memory."),
                # Optional and last: workflows saved before it existed list two widget values and load unchanged.
                io.String.Input("settings", default="", multiline=True, optional=True, tooltip=SETTINGS_TOOLTIP),
            ],
            outputs=[PixModelType.Output(display_name="model", tooltip="The loaded model, for Upscale.")],
        )

    @classmethod
    def fingerprint_inputs(cls, model_name: str, **_kwargs) -> tuple:
        return glue.model_fingerprint(model_name)

    @classmethod
    def execute(cls, model_name: str, precision: str, settings: str = "") -> io.NodeOutput:
        model = glue.load_model(model_name, precision, settings)
        return io.NodeOutput(model, ui=loader_ui(model))


class GenDRPixSelfEnsemble(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixSelfEnsemble",
            display_name="GenDR-Pix Self-ensemble",
            category=CATEGORY,
            description="Averages the model over shifts of its 8x8 pixel grid to suppress grid artifacts. "
                        "Costs one model pass per shift.",
            inputs=[
                PixModelType.Input("model", tooltip=MODEL_IN_TOOLTIP),
                io.Combo.Input("shifts", options=list(ENSEMBLE_SIZES), default=2,
                               tooltip="Number of grid shifts averaged: 1 = off, 2/4/8 = that many passes. "
                                       "2 cancels the 8x8 pattern guidance above 1 can add; 4 and 8 also "
                                       "soften fine detail."),
            ],
            outputs=[PixModelType.Output(display_name="model", tooltip=MODEL_OUT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, shifts: int) -> io.NodeOutput:
        return io.NodeOutput(with_ensemble(model, int(shifts)))


class GenDRPixGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixGuidance",
            display_name="GenDR-Pix Guidance (CFG)",
            category=CATEGORY,
            description="Classifier-free guidance between the model's positive (detail) and negative (fidelity) "
                        "conditions. PadCFG costs the same as CFG and also shifts the 8x8 grid between branches.",
            inputs=[
                PixModelType.Input("model", tooltip=MODEL_IN_TOOLTIP),
                io.Float.Input("scale", default=1.25, min=-10.0, max=30.0, step=0.05, round=0.01,
                               tooltip="Guidance strength w. 1 = positive condition only; above 1 adds detail, "
                                       "below 1 moves towards the negative (smoother, more faithful) result. "
                                       "1.25 scores best with the bundled model (either mode)."),
                io.Combo.Input("mode", options=list(GUIDANCE_MODES), default="padcfg",
                               tooltip="cfg: neg + w (pos - neg), two passes. padcfg: w pos + (1 - w) neg with "
                                       "the two branches on shifted 8x8 grids (the paper's PadCFG), two passes."),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="Optional text conditioning replacing the model's stored positive "
                                              "embedding; its width must equal the model's context size "
                                              "(not usable with the bundled model: 256, no text encoder)."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Optional text conditioning replacing the model's stored negative "
                                              "embedding; its width must equal the model's context size "
                                              "(not usable with the bundled model: 256, no text encoder)."),
            ],
            outputs=[PixModelType.Output(display_name="model", tooltip=MODEL_OUT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, scale: float, mode: str, positive=None, negative=None) -> io.NodeOutput:
        return io.NodeOutput(with_guidance(model, scale, mode, positive, negative))


class GenDRPixGridFilter(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixGridFilter",
            display_name="GenDR-Pix Grid Filter",
            category=CATEGORY,
            description="Removes the faint 8x8 grid pattern a pixel-space model can add, without extra model "
                        "passes: subtracts the local 8-periodic part of what the model changed. On by default "
                        f"(window {GRID_FILTER_WINDOW}); this node sets another window or turns it off (0).",
            inputs=[
                PixModelType.Input("model", tooltip=MODEL_IN_TOOLTIP),
                io.Int.Input("window", default=GRID_FILTER_WINDOW, min=0, max=1024, step=8,
                             tooltip="Neighbourhood in pixels over which the pattern is estimated (a multiple "
                                     "of 8; 0 = off). Smaller follows patterns that change across the image "
                                     "and removes a little more real detail; 32-64 work well."),
            ],
            outputs=[PixModelType.Output(display_name="model", tooltip=MODEL_OUT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, window: int) -> io.NodeOutput:
        return io.NodeOutput(with_grid_filter(model, int(window)))


class GenDRPixAntiRinging(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GenDRPixAntiRinging",
            display_name="GenDR-Pix Anti-ringing",
            category=CATEGORY,
            description="Keeps the output within the local range of the input's own pixel values, which removes "
                        "bright and dark halos along outlines and contours drawn on flat areas, without extra "
                        f"model passes. On by default at strength {DEFAULT_ANTIRING:g}; this node sets another "
                        "strength or turns it off.",
            inputs=[
                PixModelType.Input("model", tooltip=MODEL_IN_TOOLTIP),
                io.Float.Input("strength", default=DEFAULT_ANTIRING, min=0.0, max=1.0, step=0.05, round=0.01,
                               tooltip="1 = clamp fully to the input's local range; 0 = off (the model's own "
                                       "output, a little sharper, with its halos); in between blends the two. "
                                       f"Without this node: {DEFAULT_ANTIRING:g}."),
            ],
            outputs=[PixModelType.Output(display_name="model", tooltip=MODEL_OUT_TOOLTIP)],
        )

    @classmethod
    def execute(cls, model, strength: float) -> io.NodeOutput:
        return io.NodeOutput(with_antiring(model, float(strength)))
