"""GenDR-Pix ComfyUI node pack (the layer over the `gendr_pix` core).

model_value.py, upscale_run.py and example_inputs.py hold the node logic and import no ComfyUI module
(tested in CI);
comfy_glue.py holds every use of ComfyUI's modules; model_nodes.py and image_nodes.py declare the
V3 schemas; extension.py lists them for ComfyUI.
"""
