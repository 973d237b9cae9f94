"""Checkpoint files: our self-describing safetensors format, and foreign UNet files converted on load.

Our format: a `.safetensors` file whose metadata key `gendr_pix` holds JSON
`{"format_version": 1, "architecture": "gendr-pix", "config": ModelConfig}` and whose tensors are
`unet.<diffusers key>`, `positive` and `negative` ([1, L, context_dim] prompt embeddings).

Also accepted: a 192-channel SD2.1-shaped UNet in the diffusers or LDM key layout (safetensors, or a
pickle loaded with `weights_only=True`), alone or in a diffusers folder whose configs are read
(`foreign.py`); the settings such a file leaves open are guessed and named in a warning. Everything
else raises `CheckpointError`, which names the file, what it looks like, and what was expected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .accel import device_dtype, resolve_device
from .choices import DEFAULT_MODEL
from .config import ConfigError, ModelConfig, UNetConfig
from .diffusers_files import CheckpointFiles, checkpoint_files
from .errors import EXPECTED, CheckpointError  # noqa: F401  (EXPECTED: imported from here by older code)
from .foreign import from_foreign
from .layouts import StateDict, infer_unet_config
from .model import GenDRPix
from .pickles import read_pickle, read_pickle_inert
from .settings import PYTHON, Assumed, HowToSet, apply_settings

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARCHITECTURE = "gendr-pix"
METADATA_KEY = "gendr_pix"


def save_model(model: GenDRPix, path: str | os.PathLike, *, dtype: torch.dtype | None = torch.float16) -> None:
    """Write `model` in our format. Written to a temporary file first, so an existing file is never
    left half-written. `dtype=None` keeps the parameters' dtype."""
    tensors = {f"unet.{k}": v for k, v in model.unet.state_dict().items()}
    tensors["positive"], tensors["negative"] = model.positive.data, model.negative.data
    tensors = {k: (v if dtype is None else v.to(dtype)).detach().cpu().contiguous() for k, v in tensors.items()}
    header = {"format_version": FORMAT_VERSION, "architecture": ARCHITECTURE, "config": model.config.to_dict()}
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _file_mode(path: Path) -> int:
    """The existing file's mode, else 0666 minus the process umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def load_model(
    path: str | os.PathLike, *, device: torch.device | str = "cpu", dtype: torch.dtype | str | None = None,
    config_overrides: dict[str, Any] | None = None,
    how_to_set: HowToSet = PYTHON, warn: Callable[[str], None] | None = None,
) -> GenDRPix:
    """Load a checkpoint in any supported layout into an eval-mode `GenDRPix`.

    `path`: a checkpoint file, or a diffusers UNet or pipeline folder (its config.json and
    scheduler config are read). `device`: a torch device or its name; "auto" means CUDA, else MPS,
    else the CPU (`resolve_device`, as the CLI's --device). `dtype`: a torch dtype or a precision
    name, fp32, fp16, bf16 or auto (float32 on the CPU, bfloat16 or float16 on a GPU: `device_dtype`,
    as the CLI's --dtype); None means float32. `config_overrides` sets what a foreign file does not
    store, by setting name: `{"timestep": 50, "alpha_bar": 0.95, "head_dim": 32}` (see `settings.py`;
    UNet fields may also be nested under "unet"). A value still guessed is named in one warning,
    passed to `warn` (default: this module's logger); `how_to_set` phrases it for the caller's front
    end. Raises CheckpointError for anything that is not a GenDR-Pix-shaped checkpoint, ConfigError
    for overrides that are unknown or give an invalid config, ValueError for an unknown or
    unavailable device or precision.
    """
    device = resolve_device(device)
    dtype = torch.float32 if dtype is None else device_dtype(dtype, device)
    files = checkpoint_files(path)
    tensors, metadata = read_tensors(files.weights)
    model = model_from_tensors(files, tensors, metadata, config_overrides=config_overrides,
                               how_to_set=how_to_set, warn=warn)
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    _align_storage(model)
    model.source = str(files.weights)  # named by errors about its output (NaN: broken weights?)
    return model


def model_from_tensors(
    files: CheckpointFiles, tensors: StateDict, metadata: dict[str, str] | None, *,
    config_overrides: dict[str, Any] | None = None, how_to_set: HowToSet = PYTHON,
    warn: Callable[[str], None] | None = None,
) -> GenDRPix:
    """A GenDRPix holding `tensors` (read from `files.weights`) as its weights, in their dtype, on the CPU.

    Raises as `load_model` does; also CheckpointError when a tensor holds NaN or infinite values.
    """
    path = files.weights
    check_finite(path, tensors)
    header = _parse_header(path, metadata)
    if header is not None:
        config, unet_sd, embeddings = _from_our_format(path, header, tensors)
        if config_overrides:
            config = _overridden(path, config, config_overrides, how_to_set.origin)
        assumed: list[Assumed] = []
    else:
        config, unet_sd, embeddings, assumed = from_foreign(files, tensors, config_overrides or {}, how_to_set)
    if assumed:
        (warn or log.warning)(how_to_set.format_assumed(str(path), assumed))
    shape = (1, config.context_tokens, config.unet.context_dim)
    full = {f"unet.{k}": v for k, v in unet_sd.items()}
    for name in ("positive", "negative"):
        value = embeddings.get(name, torch.zeros(shape))
        if value.numel() != shape[1] * shape[2]:
            raise CheckpointError(path, f"'{name}' embedding has shape {tuple(value.shape)}",
                                  f"shape {shape} for context_dim={config.unet.context_dim}")
        full[name] = value.reshape(shape)
    with torch.device("meta"):  # no random init, no second copy: the file's tensors become the weights
        model = GenDRPix(config)
    try:
        result = model.load_state_dict(full, strict=False, assign=True)
    except RuntimeError as e:  # shape mismatches
        detail = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(path, f"tensors whose shapes do not fit the config ({detail})") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(path, _key_problem(result.missing_keys, result.unexpected_keys))
    return model


def check_finite(path: str | os.PathLike, tensors: StateDict) -> None:
    """Refuse weights holding NaN or infinity: they turn every output black or NaN.

    Cheap: one sum per tensor (a NaN or inf anywhere makes the sum non-finite); only a non-finite
    sum, which may also be an overflow of large finite values, is checked element-wise.
    Tensors too small to gain from threads are summed on one thread: on a busy CPU, hundreds of
    tiny parallel reductions wait on descheduled threads (measured 28 s instead of 0.3 s for the
    bundled model's 558 tensors with 2 threads under load).
    """
    floats = [(name, t) for name, t in tensors.items() if t.is_floating_point()]
    with _one_thread():
        bad = [(name, t) for name, t in floats if t.numel() < _PARALLEL_MIN and not _finite(t)]
    bad += [(name, t) for name, t in floats if t.numel() >= _PARALLEL_MIN and not _finite(t)]
    if bad:
        listed = ", ".join(f"{name} ({int((~torch.isfinite(t)).sum())} values)" for name, t in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise CheckpointError(
            path, f"{len(bad)} tensor(s) holding NaN or infinite values: {listed}{more}",
            "finite weights",
            fix="The file is broken (a diverged training run, or an overflow when it was saved in half "
                "precision); use another copy or an earlier checkpoint.")


_PARALLEL_MIN = 1 << 22
"""Tensors with at least this many values are checked with all of torch's threads."""


def _finite(t: torch.Tensor) -> bool:
    # The sum in the tensor's own dtype (accumulated in float32 for half types): 5x faster than asking
    # for a float32 result, which converts every value first. An overflow only costs the exact check.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


@contextlib.contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _overridden(path: Path, config: ModelConfig, overrides: dict[str, Any], origin: str) -> ModelConfig:
    """Settings given for a file that stores its own: they win, and each change is logged."""
    new = apply_settings(config, overrides, origin=origin)
    old_d, new_d = config.to_dict(), new.to_dict()
    changed = [f"{k} {old_d[k]!r} -> {new_d[k]!r}" for k in new_d if k != "unet" and old_d[k] != new_d[k]]
    changed += [f"{k} {old_d['unet'][k]!r} -> {new_d['unet'][k]!r}" for k in new_d["unet"]
                if old_d["unet"][k] != new_d["unet"][k]]
    if changed:
        log.info("GenDR-Pix: %s: given settings replace the file's own: %s", path, "; ".join(changed))
    return new


def _align_storage(model: torch.nn.Module) -> None:
    """Give every tensor its own aligned storage.

    Tensors read from a safetensors file can sit at unaligned offsets of one buffer; CPU kernels then
    take other code paths (slower, and not bit-identical to the same weights elsewhere).
    """
    for p in model.parameters():
        if p.device.type == "cpu" and p.data_ptr() % 64:
            p.data = p.data.clone()


def load_default_model(**kwargs: Any) -> GenDRPix:
    """Load the bundled default model (`DEFAULT_MODEL`); keyword arguments as for `load_model`, e.g.
    `load_default_model(device="auto")` for the GPU where there is one."""
    if not DEFAULT_MODEL.is_file():
        raise CheckpointError(DEFAULT_MODEL, "no bundled default model in this installation",
                              fix="Pass a model file explicitly (CLI: --model PATH).")
    return load_model(DEFAULT_MODEL, **kwargs)


def read_tensors(path: str | os.PathLike, *, skip_objects: bool = False) -> tuple[StateDict, dict[str, str] | None]:
    """Read every tensor and the safetensors metadata (None for pickles) from a checkpoint file
    (or the weights file of a diffusers folder).

    The format is decided from the file's first bytes, not its name. Pickles load only with
    `weights_only=True`; a container dict (`state_dict`, `params_ema`, ...) is unwrapped. A pickle
    that names other Python objects is refused, or with `skip_objects` read with inert stand-ins for
    them (nothing from the file runs; see pickles.py) and the names are logged.
    """
    path = checkpoint_files(path).weights
    if not path.is_file():
        raise CheckpointError(path, "no such file", fix="Check the path, or put the file in models/gendr_pix.")
    with open(path, "rb") as f:
        head = f.read(16)
    if _looks_like_safetensors(head, path.stat().st_size):
        try:
            with safe_open(path, framework="pt") as f:
                metadata = f.metadata()
            return load_file(path, device="cpu"), metadata
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, f"a truncated or corrupt safetensors file ({e})",
                                  fix="Download or copy the file again.") from None
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        if not skip_objects:
            return read_pickle(path), None
        tensors, skipped = read_pickle_inert(path)
        if skipped:
            log.warning("GenDR-Pix: %s: skipped Python objects the file names (none was created): %s",
                        path, ", ".join(skipped))
        return tensors, None
    size = path.stat().st_size
    raise CheckpointError(path, f"neither safetensors nor a PyTorch pickle ({size} bytes, starts with {head[:8]!r})")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 0 < n


def _parse_header(path: Path, metadata: dict[str, str] | None) -> dict[str, Any] | None:
    if not metadata or METADATA_KEY not in metadata:
        return None
    try:
        header = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(path, f"metadata '{METADATA_KEY}' is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("architecture") != ARCHITECTURE:
        arch = header.get("architecture") if isinstance(header, dict) else header
        raise CheckpointError(path, f"metadata for architecture {arch!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r}", f"format version <= {FORMAT_VERSION}",
                              fix="Update GenDR-Pix to read this file.")
    return header


def _config_or_error(path: Path, data: dict[str, Any]) -> ModelConfig:
    try:
        return ModelConfig.from_dict(data)
    except ConfigError as e:
        raise CheckpointError(path, f"an invalid model config ({e})") from None


def _from_our_format(path: Path, header: dict[str, Any], tensors: StateDict):
    config = _config_or_error(path, header.get("config", {}))
    unet_sd = {k[len("unet."):]: v for k, v in tensors.items() if k.startswith("unet.")}
    missing = [k for k in ("positive", "negative") if k not in tensors]
    if missing:
        raise CheckpointError(path, f"a GenDR-Pix file without the {' and '.join(missing)} embedding")
    try:
        found = infer_unet_config(unet_sd, head_dim=config.unet.head_dim, norm_groups=config.unet.norm_groups)
    except (KeyError, ValueError, ConfigError) as e:
        raise CheckpointError(path, f"a GenDR-Pix file with incomplete UNet weights ({e})") from None
    if found != config.unet:
        diff = _config_diff(config.unet, found)
        raise CheckpointError(path, f"metadata that disagrees with the tensors ({diff})",
                              "the config in the metadata to describe the stored tensors")
    return config, unet_sd, {"positive": tensors["positive"], "negative": tensors["negative"]}


def _config_diff(expected: UNetConfig, found: UNetConfig) -> str:
    a, b = expected.__dict__, found.__dict__
    return "; ".join(f"{k}: metadata {a[k]!r}, tensors {b[k]!r}" for k in a if a[k] != b[k])


def _key_problem(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing UNet tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    return "a UNet with " + " and ".join(parts)
