import json

import pytest

from edgekit.errors import EdgekitError
from edgekit.manifest import Manifest, OutputCheck, Precision, Preprocessing, TensorSpec, Verification


def make():
    return Manifest(
        format="ncnn", files={"param": "model.ncnn.param", "bin": "model.ncnn.bin"},
        source={"file": "m.onnx", "sha256": "ab" * 32, "opset": 13},
        inputs=[TensorSpec("x", "float32", [1, 3, 48, 192], "in0", None, "dropped")],
        outputs=[TensorSpec("y", "float32", [1, 2], "out0")],
        precision=Precision("fp32", "fp32", "fp32", {"use_fp16_storage": False}),
        preprocessing=Preprocessing(color="bgr", mean=[0.5] * 3, std=[0.5] * 3),
        verification=Verification(True, "fp32", "3 images", 3, {"cos": 0.999},
                                  [OutputCheck("y", [1, 2], 1e-7, 1e-7, 1e-8, 1.0, True)]))


def test_round_trip(tmp_path):
    m = make()
    m.save(tmp_path)
    back = Manifest.load(tmp_path)
    assert back == m
    assert isinstance(back.inputs[0], TensorSpec) and back.inputs[0].batch == "dropped"
    assert isinstance(back.verification.outputs[0], OutputCheck)
    data = json.loads((tmp_path / "edgekit.json").read_text())
    assert data["schema"] == 1 and data["precision"]["settings"] == {"use_fp16_storage": False}


def test_bad_manifests(tmp_path):
    with pytest.raises(EdgekitError, match="not an edgekit artifact"):
        Manifest.load(tmp_path)
    (tmp_path / "edgekit.json").write_text("{not json")
    with pytest.raises(EdgekitError, match="not valid JSON"):
        Manifest.load(tmp_path)
    (tmp_path / "edgekit.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(EdgekitError, match="newer"):
        Manifest.load(tmp_path)
