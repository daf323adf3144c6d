"""The backend registry: the one place a format name maps to its backend (docs/architecture.md, "Backends").

Adding a backend is one new module that defines `BACKEND` (an instance of `base.Backend`) and one line in
`BUILTIN`. A third party adds one without touching edgekit through an entry point in the group
`edgekit.backends`, named after the format and pointing at a module with `BACKEND` (or at the object):

    [project.entry-points."edgekit.backends"]
    myformat = "mypackage.edgekit_backend"

Modules are imported on first use, so a missing runtime only fails when that format is asked for."""
from __future__ import annotations

import importlib
import importlib.metadata

from ..errors import EdgekitError

# format name -> module holding BACKEND
BUILTIN = {
    "onnx": "edgekit.backends.onnxruntime",
    "ncnn": "edgekit.backends.ncnn",
    "mnn": "edgekit.backends.mnn",
    "tflite": "edgekit.backends.tflite",
    "openvino": "edgekit.backends.openvino",
}
CONVERTED_FORMATS = ["ncnn", "mnn", "tflite", "openvino"]  # what `--target all` means
ENTRY_POINT_GROUP = "edgekit.backends"

_plugins: dict[str, importlib.metadata.EntryPoint] | None = None


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    global _plugins
    if _plugins is None:
        _plugins = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
                    if ep.name not in BUILTIN}
    return _plugins


def formats() -> list[str]:
    """Every format a user can name: the built-in ones, then those that installed packages add."""
    return [*BUILTIN, *_entry_points()]


def get(fmt: str):
    """The Backend for a format name."""
    if fmt in BUILTIN:
        return importlib.import_module(BUILTIN[fmt]).BACKEND
    ep = _entry_points().get(fmt)
    if ep is None:
        raise EdgekitError(f"unknown format '{fmt}'; known formats: {', '.join(formats())}")
    try:
        obj = ep.load()
    except Exception as e:  # a broken plugin must not break edgekit: say which package
        raise EdgekitError(f"format '{fmt}': the backend plugin {ep.value} failed to load "
                           f"({type(e).__name__}: {e})") from None
    return getattr(obj, "BACKEND", obj)
