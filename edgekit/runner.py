"""`edgekit.load`: an artifact folder (or a plain .onnx file) -> a Runner with ONNX semantics."""
from __future__ import annotations

from pathlib import Path

from . import backends
from .errors import EdgekitError
from .manifest import MANIFEST_NAME, Manifest, Precision
from .onnx import inspect
from .onnx.load import load_model


def load(artifact: str | Path, threads: int | None = None, device: str = "cpu"):
    """`device`: "cpu" everywhere; "vulkan" for ncnn artifacts on a machine with a Vulkan GPU."""
    path = Path(artifact)
    if threads is not None and threads <= 0:
        raise EdgekitError(f"threads must be a positive number, not {threads}")
    if device not in ("cpu", "vulkan"):
        raise EdgekitError(f"unknown device '{device}'; use 'cpu' or 'vulkan' (ncnn)")
    if path.is_file() and path.suffix == ".onnx":
        if device != "cpu":
            raise EdgekitError("ONNX Runtime runs on the CPU here; device='vulkan' is for ncnn artifacts")
        return load_onnx(path, threads)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        manifest = Manifest.load(path)
        if device == "cpu":
            return backends.get(manifest.format).load(path, manifest, threads)
        if manifest.format != "ncnn":
            raise EdgekitError(f"device='{device}' is for ncnn artifacts; {path} is {manifest.format}")
        return backends.get("ncnn").load(path, manifest, threads, device=device)
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
