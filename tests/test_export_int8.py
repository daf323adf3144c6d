"""int8 through the export flow: ncnn quantized in pure Python (edgekit.quantize), calibrated on one set of
real inputs and gated against ONNX Runtime fp32 on held-out ones, with layers moved back to float until the
budget holds; clear errors for what int8 cannot do."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.fixtures import OCR_MODELS, write_text_images
from tests.models import conv_net, save


def test_ppocr_cls_int8_on_ncnn_meets_its_budget(tmp_path):
    fx = OCR_MODELS["ppocr-cls"]
    calib = write_text_images(tmp_path / "calib", "text-line", 12)
    held_out = write_text_images(tmp_path / "val", "text-line", 3)
    assert calib[0].parent != held_out[0].parent  # the gate runs on inputs the calibration never saw
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "export", str(fx.path), "--target", "ncnn",
                           "--precision", "int8", "--calib", str(tmp_path / "calib"), "--data", str(tmp_path / "val"),
                           "--max-drop", "1%", "--input-shape", fx.input_shape, "--bgr", "--mean", "0.5",
                           "--std", "0.5", "--resize", "keep-ratio-pad-right", "--out", str(tmp_path / "out"),
                           "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (r,) = json.loads((tmp_path / "r.json").read_text())
    m = r["manifest"]
    q = m["precision"]["quantization"]
    assert m["precision"]["requested"] == "int8" and m["precision"]["settings"]["use_int8_inference"] is True
    assert q["layers_int8"] > 0 and q["calibration_samples"] == 12 and q["size_ratio"] < 0.35
    assert all(name.startswith("convdw") for name in q["layers_kept_float"])  # depthwise stays float
    v = m["verification"]
    assert v["passed"] and "val" in v["inputs"] and v["tolerances"]["cos"] == pytest.approx(0.99)
    assert all(o["cosine"] >= 0.99 and o["top1"] == 1.0 for o in v["outputs"])
    runner = edgekit.load(r["path"])
    assert runner.manifest.precision.settings["use_int8_inference"]


def test_int8_refusals_are_clear_and_write_nothing(tmp_path):
    model = save(conv_net(), tmp_path / "conv.onnx")
    out = tmp_path / "out"
    with pytest.raises(EdgekitError, match=r"int8 needs calibration data: give --calib DIR"):
        edgekit.export(model, target="ncnn", out=out, input_shapes=["x:1x3x16x16"], precision="int8")
    # every format has int8 now; fp16 on onnx is refused rather than silently given as the fp32 model
    with pytest.raises(EdgekitError, match="fp16 is not available for onnx here; formats with fp16: .*tflite"):
        edgekit.export(model, target="onnx", out=out, input_shapes=["x:1x3x16x16"], precision="fp16")
    with pytest.raises(EdgekitError, match="the accuracy budget is a fraction"):
        edgekit.export(model, target="ncnn", out=out, input_shapes=["x:1x3x16x16"], precision="int8",
                       calib=[str(tmp_path)], max_drop=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgekitError, match="no images or .npy/.npz files"):
        edgekit.export(model, target="ncnn", out=out, input_shapes=["x:1x3x16x16"], precision="int8",
                       calib=[str(tmp_path / "empty")])
    assert not out.exists()
