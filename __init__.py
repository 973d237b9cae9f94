"""ComfyUI entry point of the GenDR-Pix node pack (V3 API).

ComfyUI imports this folder as a package and calls `comfy_entrypoint`. Nothing ComfyUI-specific is
imported at module level, so importing this file elsewhere (tools, test collectors) is harmless.
NODE_CLASS_MAPPINGS is deliberately absent: ComfyUI would prefer it over the V3 entry point.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

WEB_DIRECTORY = "./web"
"""Served under /extensions/<this folder's name>/, which is also where the frontend looks for
web/docs/<node_id>.md help pages (a [tool.comfy] web entry would be keyed by project name instead)."""

_log = logging.getLogger(__name__)


def _use_bundled_core() -> None:
    """Make `import gendr_pix` resolve to the copy shipped in this folder.

    The folder itself is not on sys.path (putting it there would also expose `nodes`, shadowing
    ComfyUI's own nodes.py), so the one package is registered by name. A `gendr_pix` imported
    earlier (e.g. pip-installed) is kept, with a warning when it is not this copy.
    """
    here = Path(__file__).resolve().parent / "gendr_pix"
    loaded = sys.modules.get("gendr_pix")
    if loaded is not None:
        origin = Path(getattr(loaded, "__file__", "") or "").resolve().parent
        if origin != here:
            _log.warning("GenDR-Pix: using the already imported gendr_pix from %s, not %s", origin, here)
        return
    spec = importlib.util.spec_from_file_location("gendr_pix", here / "__init__.py",
                                                  submodule_search_locations=[str(here)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["gendr_pix"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["gendr_pix"]
        raise


async def comfy_entrypoint():
    """Return the ComfyExtension that lists this pack's nodes."""
    _use_bundled_core()
    from .nodes.extension import GenDRPixExtension

    return GenDRPixExtension()
