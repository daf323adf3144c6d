"""Shared pieces of the pass tests: run a model on ONNX Runtime, and export a tiny model with or without a pass."""
from __future__ import annotations

import numpy as np
import onnx


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def export_one(model: onnx.ModelProto, fmt: str, tmp_path, passes):
    """Export `model` (saved to tmp_path) to one format with the given pass list; returns the ExportResult."""
    from edgekit import export

    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    (r,) = export(path, target=fmt, out=tmp_path / f"out-{'-'.join(passes) or 'raw'}", passes=passes, force=True)
    return r
