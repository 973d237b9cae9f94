"""UNet state-dict layouts: canonicalize -> detect -> convert -> infer the config.

Canonical layout = diffusers `UNet2DConditionModel` key names (what `unet.UNet` produces). The original
LDM / CompVis layout (`input_blocks.N.M...`, optionally under `model.diffusion_model.`) is mapped onto
it. All functions are pure: they never mutate the caller's dict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from .config import UNetConfig

StateDict = dict[str, Tensor]
Layout = Literal["diffusers", "ldm"]

# Prefixes that wrappers put in front of UNet keys: LDM checkpoints, our own files, DDP, torch.compile.
_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "unet.", "module.", "_orig_mod.")

# LDM ResBlock sub-module names -> diffusers ResnetBlock2D names.
_RESNET_LDM_TO_DIFFUSERS = {
    "in_layers.0.": "norm1.",
    "in_layers.2.": "conv1.",
    "emb_layers.1.": "time_emb_proj.",
    "out_layers.0.": "norm2.",
    "out_layers.3.": "conv2.",
    "skip_connection.": "conv_shortcut.",
}


def strip_prefixes(sd: StateDict) -> StateDict:
    """Remove wrapper prefixes shared by the UNet keys (repeatedly: `module.unet.` is two wrappers)."""
    out = dict(sd)
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            inside = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
            if inside and ("conv_in.weight" in inside or "input_blocks.0.0.weight" in inside
                           or any(k.startswith(_PREFIXES) for k in inside)):
                out = inside
                changed = True
                break
    return out


def detect_layout(sd: StateDict) -> Layout | None:
    """Which UNet layout the (prefix-stripped) keys are in, or None if neither."""
    if "conv_in.weight" in sd and any(k.startswith("down_blocks.") for k in sd):
        return "diffusers"
    if "input_blocks.0.0.weight" in sd and any(k.startswith("output_blocks.") for k in sd):
        return "ldm"
    return None


@dataclass(frozen=True)
class _Topology:
    """What the LDM <-> diffusers key mapping depends on."""

    levels: int
    layers_per_block: int
    attention_levels: tuple[bool, ...]
    mid_attention: bool


def _ldm_topology(sd: StateDict) -> _Topology:
    ops = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"input_blocks\.(\d+)\.0\.op\.weight", k)))
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"input_blocks\.(\d+)\.", k))}
    # input_blocks: [0] conv_in, then per level L resnets (+ transformers) and one downsampler but the last.
    layers = ops[0] - 1 if ops else max(blocks)
    levels = len(ops) + 1
    attn = tuple(f"input_blocks.{1 + i * (layers + 1)}.1.norm.weight" in sd for i in range(levels))
    return _Topology(levels, layers, attn, "middle_block.2.in_layers.0.weight" in sd)


def _topology(cfg: UNetConfig) -> _Topology:
    return _Topology(cfg.levels, cfg.layers_per_block, cfg.attention_levels, cfg.mid_attention)


def _prefix_map(t: _Topology) -> dict[str, str]:
    """diffusers prefix -> LDM prefix for every block (resnet inner names handled separately)."""
    m = {
        "conv_in.": "input_blocks.0.0.",
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "conv_norm_out.": "out.0.",
        "conv_out.": "out.2.",
        "mid_block.resnets.0.": "middle_block.0.",
    }
    if t.mid_attention:
        m["mid_block.attentions.0."] = "middle_block.1."
    m["mid_block.resnets.1."] = f"middle_block.{2 if t.mid_attention else 1}."
    step = t.layers_per_block + 1
    for i in range(t.levels):
        for j in range(t.layers_per_block):
            n = 1 + i * step + j
            m[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{n}.0."
            if t.attention_levels[i]:
                m[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{n}.1."
        if i < t.levels - 1:
            m[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{1 + i * step + t.layers_per_block}.0.op."
    for u in range(t.levels):
        has_attn = t.attention_levels[t.levels - 1 - u]
        for j in range(step):
            n = u * step + j
            m[f"up_blocks.{u}.resnets.{j}."] = f"output_blocks.{n}.0."
            if has_attn:
                m[f"up_blocks.{u}.attentions.{j}."] = f"output_blocks.{n}.1."
        if u < t.levels - 1:
            m[f"up_blocks.{u}.upsamplers.0.conv."] = f"output_blocks.{u * step + step - 1}.{2 if has_attn else 1}.conv."
    return m


def _rename(sd: StateDict, prefixes: dict[str, str], resnet_inner: dict[str, str]) -> StateDict:
    """Replace each key's block prefix; inside resnets also rename the sub-modules."""
    out: StateDict = {}
    for key, value in sd.items():
        new = key
        for src, dst in prefixes.items():
            if key.startswith(src):  # prefixes end in "." so `.1.` never matches `.10.`
                rest = key[len(src):]
                if ".resnets." in src + dst:
                    for a, b in resnet_inner.items():
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                new = dst + rest
                break
        out[new] = value
    return out


def ldm_to_diffusers(sd: StateDict) -> StateDict:
    """Map an LDM-layout UNet state dict (prefix stripped) to the canonical diffusers layout."""
    inverse = {ldm: diff for diff, ldm in _prefix_map(_ldm_topology(sd)).items()}
    return _rename(sd, inverse, _RESNET_LDM_TO_DIFFUSERS)


def diffusers_to_ldm(sd: StateDict, config: UNetConfig) -> StateDict:
    """Canonical -> LDM layout (the inverse of `ldm_to_diffusers`), e.g. to export for other tools."""
    back = {diff: ldm for ldm, diff in _RESNET_LDM_TO_DIFFUSERS.items()}
    return _rename(sd, _prefix_map(_topology(config)), back)


def infer_unet_config(sd: StateDict, *, head_dim: int = 64, norm_groups: int = 32) -> UNetConfig:
    """Read a UNetConfig off canonical keys and shapes.

    Heads and GroupNorm groups leave no trace in the shapes; they default to SD2.1's (64, 32).
    Raises KeyError if a required key is missing and ConfigError if the shapes are inconsistent.
    """
    levels = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("down_blocks."))
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k)))
    attn_keys = sorted(k for k in sd if k.endswith("attn2.to_k.weight"))
    proj = next((sd[k] for k in sd if k.endswith("proj_in.weight")), None)
    return UNetConfig(
        in_channels=sd["conv_in.weight"].shape[1],  # Conv2d weight: [out, in, kh, kw]
        out_channels=sd["conv_out.weight"].shape[0],
        block_channels=tuple(sd[f"down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(levels)),
        layers_per_block=layers,
        attention_levels=tuple(f"down_blocks.{i}.attentions.0.norm.weight" in sd for i in range(levels)),
        mid_attention="mid_block.attentions.0.norm.weight" in sd,
        # Count transformer blocks in the first attention layer found.
        transformer_depth=1 + max(
            (int(m.group(1)) for k in sd if (m := re.search(r"attentions\.0\.transformer_blocks\.(\d+)\.", k))),
            default=0,
        ),
        context_dim=sd[attn_keys[0]].shape[1] if attn_keys else UNetConfig().context_dim,  # Linear: [out, in]
        linear_projection=proj is None or proj.ndim == 2,
        head_dim=head_dim,
        norm_groups=norm_groups,
    )
