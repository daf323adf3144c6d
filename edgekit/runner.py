"""`edgekit.load`: an artifact folder (or a plain .onnx file) -> a Runner with ONNX semantics."""
from __future__ import annotations

from pathlib import Path

from . import backends
from .errors import EdgekitError
from .manifest import MANIFEST_NAME, Manifest, Precision
from .onnx import inspect
from .onnx.load import load_model


def load(artifact: str | Path, threads: int | None = None):
    path = Path(artifact)
    if threads is not None and threads <= 0:
        raise EdgekitError(f"threads must be a positive number, not {threads}")
    if path.is_file() and path.suffix == ".onnx":
        return load_onnx(path, threads)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        manifest = Manifest.load(path)
        return backends.get(manifest.format).load(path, manifest, threads)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or folder")
    raise EdgekitError(f"{path}: neither an .onnx model nor an edgekit artifact folder (no {MANIFEST_NAME})")


def load_onnx(path: Path, threads: int | None = None):
    """Run a plain ONNX file with ONNX Runtime (the reference), described by a manifest made on the fly."""
    from .backends.onnxruntime import OrtRunner

    model = load_model(path)
    manifest = Manifest("onnx", {"model": path.name}, {"file": path.name}, inspect.graph_inputs(model),
                        inspect.graph_outputs(model), Precision())
    return OrtRunner(manifest, path.parent, threads, model_bytes=model.SerializeToString())
