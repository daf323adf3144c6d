"""The one door from a path (or an in-memory ONNX model) to a Runner with ONNX semantics.

Every caller that runs a model comes through here: the CLI's run/check/bench, export's verification, bisect's
prefixes, the importer's comparison, the pipeline's inference nodes. The door checks what is the same for
every backend (the path, the thread count, the device the backend supports, the files the manifest names);
the backend's own `load` only builds its runner."""
from __future__ import annotations

import re
from pathlib import Path

import onnx

from . import backends
from .backends.base import Runner
from .errors import EdgekitError
from .manifest import MANIFEST_NAME, Manifest, Precision
from .native import quiet
from .onnx import inspect
from .onnx.load import load_model
from .options import spell


def load(artifact: str | Path, threads: int | None = None, device: str = "cpu",
         input_shapes: dict | list | None = None) -> Runner:
    """Load an artifact folder (made by `edgekit.export`) or a plain .onnx file (run by ONNX Runtime).

    Args:
        artifact: an artifact folder (with `edgekit.json`) or an `.onnx` file.
        threads: threads for the runtime (None: the runtime's default).
        device: "cpu", or another device the artifact's backend supports ("vulkan" for ncnn).
        input_shapes: for a plain .onnx with dynamic axes, fix them (["x:1x3x48x192"] or {"x": [1, 3, 48, 192]}).

    Returns:
        a Runner: `runner({"x": array}) -> {"y": array}` in the ONNX model's names, shapes, layouts and dtypes.

    Raises:
        EdgekitError: a missing or malformed path, a bad thread count, an unsupported device, a missing runtime.
    """
    path = Path(artifact)
    if threads is not None and threads <= 0:
        raise EdgekitError(f"threads must be a positive number, not {threads}")
    manifest = read_artifact(path)
    if manifest is None:
        _check_device("onnx", device, path)
        model = load_model(path)
        if not input_shapes:
            return reference(model, threads, name=path.name, folder=path.parent)
        from .onnx.shapes import fix_input_shapes, parse_shape_args, resolve_input_shapes

        shapes = input_shapes if isinstance(input_shapes, dict) else parse_shape_args(list(input_shapes))
        model = fix_input_shapes(model, resolve_input_shapes(model, shapes))
        try:
            return reference(model, threads, name=path.name, folder=path.parent)
        except EdgekitError as e:  # fixed to a shape the model cannot take: say which
            given = ", ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in shapes.items())
            raise EdgekitError(f"{e} (with {spell('input_shapes', given)}: the model cannot run this shape; give "
                               "another)") from None
    return open_artifact(path, manifest, threads, device)


def read_artifact(path: Path) -> Manifest | None:
    """An artifact folder's manifest, or None for a plain .onnx file; anything else is refused."""
    path = Path(path)
    if path.is_file() and path.suffix == ".onnx":
        return None
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return Manifest.load(path)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or folder")
    raise EdgekitError(f"{path}: neither an .onnx model nor an edgekit artifact folder (no {MANIFEST_NAME})")


def open_artifact(folder: Path, manifest: Manifest, threads: int | None = None, device: str = "cpu",
                  files_checked: bool = False) -> Runner:
    """An artifact folder whose manifest is already read (export verifies its artifact through here). Its
    files are checked against the manifest's sha256 before any runtime reads them, unless the caller has
    just done so (`files_checked`: export that wrote them, bench that keeps hashing out of its load time)."""
    backend = backends.get(manifest.format)
    _check_device(manifest.format, device, folder)
    backend.require()
    if not files_checked:
        manifest.check_files(folder)
    with quiet():  # runtimes print their own chatter while loading (native.py)
        return backend.load(Path(folder), manifest, threads, device)


def reference(model: onnx.ModelProto, threads: int | None = None, name: str = "model.onnx",
              folder: Path | None = None) -> Runner:
    """ONNX Runtime at fp32 on an in-memory model: the reference every check compares against."""
    from .backends.onnxruntime import OrtRunner

    manifest = Manifest("onnx", {"model": name}, {"file": name}, inspect.graph_inputs(model),
                        inspect.graph_outputs(model), Precision())
    try:
        return OrtRunner(manifest, folder, threads, model_bytes=model.SerializeToString())
    except Exception as e:  # ONNX Runtime refusing the model itself: say what it is about
        raise EdgekitError(f"{name}: ONNX Runtime cannot load the model: {_why_ort_refuses(model, e)}") from None


def _why_ort_refuses(model: onnx.ModelProto, error: Exception) -> str:
    custom = sorted({(n.domain, n.op_type, n.name) for n in model.graph.node
                     if n.domain not in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")})
    if custom:
        domain, op, node = custom[0]
        return (f"op {op} (node {node}) is in the custom domain '{domain}'; ONNX Runtime needs that domain's "
                "custom-op library, and the converters cannot translate it: replace the op, or export the model "
                "without it")
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", first)[:300]


def _check_device(fmt: str, device: str, path: Path) -> None:
    supported = backends.get(fmt).devices
    if device not in supported:
        others = [f for f in backends.formats() if f in backends.BUILTIN and device in backends.get(f).devices]
        raise EdgekitError(f"{path}: the {fmt} backend runs on {', '.join(supported)}, not '{device}'"
                           + (f" ({device} is for {', '.join(others)} artifacts)" if others else ""))
