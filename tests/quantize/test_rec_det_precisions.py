"""PP-OCR rec and det at int8 and fp16 on ncnn, MNN, TFLite and OpenVINO (and int8 on ONNX), through the export
flow (issue 13, "must hold"; cls and BlazeFace are in test_int8_formats.py / test_tflite_int8.py): each artifact
passes its gate on a held-out input or is refused with its measured drop, and the int8 artifacts are small.

Kept cheap: one session export per model and precision (every format in one call), 4 calibration images, one
held-out image, the OCR app's gate metric (rec ctc, det mask@0.3) at a 10% budget so that the repair loop
mostly stops after its first round. Time here (2 shared cores, beside other jobs): 16.6 min for the whole file
(ncnn int8 det 7.5 min, ncnn int8 rec 3.5 min, ncnn fp16 det 3 min: each format's conversion and repair is
charged to the first test that asks for the model), hence `slow`."""
from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.fixtures import OCR_MODELS, write_text_images

INT8 = "ncnn,mnn,tflite,openvino,onnx"
FP16 = "ncnn,mnn,tflite,openvino"
METRIC = {"ppocr-rec": "ctc", "ppocr-det": "mask@0.3"}  # what apps/ocr/graph.yaml gates them by
# int8 size / fp32 size that each format reaches on each model here (issue 13's goal is 0.35; docs/architecture.md
# "Precision" says what the others keep). TFLite rec: 0.96, its float-fallback ops keep fp32 weights (TensorFlow's
# converter has no fp16 for denylisted ops) and the repair kept the big MatMuls float
SIZE = {"ppocr-rec": {"ncnn": 0.35, "mnn": 0.35, "openvino": 0.35, "onnx": 0.35, "tflite": 1.0},
        "ppocr-det": {"ncnn": 0.4, "mnn": 0.45, "openvino": 0.35, "onnx": 0.35, "tflite": 0.35}}
# measured det: ONNX 0.29, OpenVINO 0.33, TFLite 0.30 (every layer int8); MNN 0.41, refused (its int8 det gives NaN,
# 30 layers kept float, now fp16); ncnn is another module's (issue 13's ncnn work)
_CACHE: dict = {}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """exported(model, precision) -> {format: ExportResult}, each model and precision exported once."""

    def get(name: str, precision: str) -> dict:
        if (name, precision) not in _CACHE:
            fx = OCR_MODELS[name]
            root = tmp_path_factory.mktemp(f"{name}_{precision}")
            write_text_images(root / "val", fx.kind, 1)
            extra = {}
            if precision == "int8":
                write_text_images(root / "calib", fx.kind, 4)
                extra = {"calib": [str(root / "calib")]}
            results = edgekit.export(fx.path, target=INT8 if precision == "int8" else FP16, out=root / "out",
                                     input_shapes=[fx.input_shape], precision=precision, data=[str(root / "val")],
                                     samples=1, preprocessing=fx.preprocessing, metric=METRIC[name], max_drop=0.1,
                                     recipe="default", **extra)
            _CACHE[name, precision] = {r.format: r for r in results}
        return _CACHE[name, precision]

    return get


def _passes_or_refuses(r):
    """An artifact that passed its gate (verified at its precision), or a clear refusal that wrote nothing."""
    m = r.manifest
    if r.ok:
        assert m.verification.passed and m.verification.samples == 1, r.format
        (x,) = edgekit.load(r.path).inputs
        assert x is not None
        return True
    assert r.path is None, r.format
    assert "converted but wrong against ONNX Runtime" in r.error, r.error
    return False


@pytest.mark.parametrize("name", ["ppocr-rec", "ppocr-det"])
@pytest.mark.parametrize("fmt", INT8.split(","))
def test_int8_passes_its_gate_or_refuses_and_is_small(exported, name, fmt):
    r = exported(name, "int8")[fmt]
    ok = _passes_or_refuses(r)
    q = r.manifest.precision.quantization
    assert r.manifest.precision.requested == "int8" and q["layers_int8"] > 0 and q["calibration_samples"] == 4
    assert q["rounds"] and (q["rounds"][-1]["passed"] or not ok)
    assert q["size_ratio"] <= SIZE[name][fmt], (fmt, q["size_ratio"], q["layers_kept_float"])


@pytest.mark.parametrize("name", ["ppocr-rec", "ppocr-det"])
@pytest.mark.parametrize("fmt", FP16.split(","))
def test_fp16_passes_its_gate_or_refuses(exported, name, fmt):
    r = exported(name, "fp16")[fmt]
    if _passes_or_refuses(r):
        m = r.manifest
        assert m.precision.requested == "fp16" and m.precision.weights == "fp16" and m.verification.precision == "fp16"
        files = [r.path / f for f in m.files.values() if f.endswith((".mnn", ".bin", ".tflite"))]
        assert sum(f.stat().st_size for f in files) < 0.65 * OCR_MODELS[name].path.stat().st_size, fmt


def test_the_int8_artifacts_keep_the_app_outputs_finite(exported):
    """rec's int8 artifacts run on a blank line and give finite class scores of the fp32 model's shape."""
    for fmt, r in exported("ppocr-rec", "int8").items():
        if r.ok:
            (out,) = edgekit.load(r.path)({"x": np.zeros([1, 3, 48, 320], np.float32)}).values()
            assert out.ndim == 3 and np.isfinite(out).all(), fmt


def test_ncnn_int8_det_is_close_before_any_repair(exported):
    """Bias correction (ncnn_int8 "best", reference.bias_shift) on a real MobileNetV3 detector: with every
    non-depthwise layer int8 (the repair's first round) PP-OCRv4 det's probability map stays within 2% cosine of
    fp32 on the calibration pages (0.95 worst cosine without it, measured on the sample video's frames)."""
    q = exported("ppocr-det", "int8")["ncnn"].manifest.precision.quantization
    first = q["rounds"][0]  # "drop" there is the gate's (mask@0.3); the cosine drop beside it
    assert first["quantized"] >= 40 and first["cosine_drop"] < 0.02, q["rounds"]
