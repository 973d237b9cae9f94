"""PyTorch pickles (.pt/.pth/.ckpt/.bin): tensors only, and nothing from the file ever runs.

`read_pickle` (the loader's path) uses torch's `weights_only=True` unpickler and refuses any file
that names other Python objects, with a message that lists them and says what to do.
`read_pickle_inert` (the `convert` command's path) also reads such files, still with the
`weights_only=True` unpickler: each object the file names is allowlisted as an inert stand-in class
of ours, so its tensors can be taken out and the rest is dropped unexecuted.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError
from .layouts import StateDict

CONTAINER_KEYS = ("state_dict", "params_ema", "params", "model", "module", "ema", "unet")
"""Dict entries that wrap a state dict (Lightning, BasicSR, DDP ...), looked into in this order."""
CONVERT_HINT = "python -m gendr_pix convert"
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TENSORS_ONLY = "a file of tensors only (.safetensors, or a PyTorch pickle of plain tensors)"


def read_pickle(path: Path) -> StateDict:
    """The tensor dict in a pickle loaded with `weights_only=True` (containers unwrapped).

    Raises CheckpointError naming the objects a file would need code for, or the damage.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        names = unsafe_globals(path, str(e))
        if names or "weights only" in str(e).lower():
            raise _unsafe(path, names, str(e)) from None
        raise _corrupt(path, e) from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise _corrupt(path, e) from None
    return tensor_dict(path, unwrap(obj))


def read_pickle_inert(path: Path) -> tuple[StateDict, list[str]]:
    """The tensors of a pickle that also names other Python objects, and the names it used.

    Every name becomes an inert stand-in (it records its arguments, runs nothing), allowlisted for
    torch's `weights_only=True` unpickler under that name. Tensors inside pickled `nn.Module`s are
    collected under their usual state-dict names.
    """
    names: list[str] = []
    for _ in range(100):  # one more name per round when torch cannot list them up front (old format)
        try:
            with torch.serialization.safe_globals([(_stand_in(n), n) for n in names]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
            return tensor_dict(path, unwrap(obj)), names
        except pickle.UnpicklingError as e:
            more = [n for n in unsafe_globals(path, str(e)) if n not in names]
            if not more:
                raise _corrupt(path, e) from None
            names += more
        except (RuntimeError, EOFError, ValueError, OSError) as e:
            raise _corrupt(path, e) from None
    raise CheckpointError(path, f"a pickle naming more than {len(names)} Python objects", _TENSORS_ONLY)


def unsafe_globals(path: Path, message: str = "") -> list[str]:
    """The classes/functions a pickle names beyond what `weights_only=True` allows, read without
    running anything; from torch's error message where torch cannot list them (pre-zip format)."""
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (ValueError, RuntimeError, OSError, pickle.UnpicklingError, EOFError):
        names = []
    return names or list(dict.fromkeys(_GLOBAL.findall(message)))


def unwrap(obj: Any) -> Any:
    """Step into state-dict containers, and flatten a pickled nn.Module's stand-in."""
    for _ in range(3):  # nested containers, e.g. {"model": {"state_dict": ...}, "global_step": ...}
        if isinstance(obj, _StandIn):
            obj = obj.module_tensors() or obj.state or obj.items
        if isinstance(obj, dict):
            inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), (dict, _StandIn))), None)
            if inner is not None:
                obj = inner
    return obj.module_tensors() if isinstance(obj, _StandIn) else obj


def tensor_dict(path: Path, obj: Any) -> StateDict:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(path, f"a pickle holding {type(obj).__name__}, not a dict of tensors")
    return dict(obj)


def _unsafe(path: Path, names: list[str], message: str) -> CheckpointError:
    if names:
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        what = f"a PyTorch pickle that also holds Python objects ({shown})"
    else:
        what = f"a PyTorch pickle that torch's safe loader refuses ({_reason(message)})"
    return CheckpointError(
        path, f"{what}; loading it would run code named by the file, which GenDR-Pix never does",
        _TENSORS_ONLY,
        fix=f"Get a .safetensors release of the model, or convert this file: {CONVERT_HINT} \"{path}\" "
            f"\"{path.with_suffix('.safetensors')}\" (from the GenDR-Pix folder) keeps only its tensors "
            "and runs nothing from it.")


def _corrupt(path: Path, error: BaseException) -> CheckpointError:
    return CheckpointError(path, f"a truncated or corrupt PyTorch file ({_reason(str(error)) or type(error).__name__})",
                           fix="Download or copy the file again.")


def _reason(message: str) -> str:
    """The informative line of a torch error, without torch's advice on how to load it unsafely."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    line = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else "")
    line = line.split("WeightsUnpickler error:")[-1].strip().split(". ")[0].rstrip(".")
    return "" if "weights_only" in line else line


class _StandIn:
    """Stands for a class or function a pickle names; records what the file passes and runs nothing."""

    name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state, self.items = args, kwargs, None, {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses pickle their items
        self.items[key] = value

    def append(self, value: Any) -> None:  # list subclasses pickle their items
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def module_tensors(self, prefix: str = "") -> dict[str, Tensor]:
        """A pickled nn.Module's parameters and buffers, keyed as its state_dict() would be."""
        state = self.state if isinstance(self.state, dict) else {}
        out = {f"{prefix}{k}": v for part in ("_parameters", "_buffers")
               for k, v in (state.get(part) or {}).items() if isinstance(v, Tensor)}
        for name, child in (state.get("_modules") or {}).items():
            if isinstance(child, _StandIn):
                out.update(child.module_tensors(f"{prefix}{name}."))
        return out


def _stand_in(name: str) -> type[_StandIn]:
    return type(name.rsplit(".", 1)[-1], (_StandIn,), {"name": name})
