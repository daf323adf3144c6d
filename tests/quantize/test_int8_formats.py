"""int8 on MNN (its own quantizer), OpenVINO (NNCF) and ONNX (ONNX Runtime static QDQ), through the export flow on
the real models: calibrated on one set of real inputs, gated against ONNX Runtime fp32 on held-out ones, layers
moved back to float until the gate holds or the artifact refused with its measured drop; the manifest's
`precision.quantization` in one shape for every format.

Time here (2 shared cores): PP-OCR cls on the three formats ~1 min, BlazeFace short (one recipe) ~2-3 min."""
from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.fixtures import MEDIAPIPE_MODELS, OCR_MODELS, mediapipe_onnx, write_face_images, write_text_images
from edgekit.quantize.repair import Attempt, within_budget

FORMATS = "onnx,mnn,openvino"
SHAPE = {"method", "calibration_samples", "layers_int8", "layers_kept_float", "kept_float_why", "calibration_drop",
         "rounds", "size_ratio"}


@pytest.fixture(scope="session")
def cls_int8(tmp_path_factory):
    """PP-OCR cls exported at int8 to MNN, OpenVINO and ONNX, once: {format: ExportResult}. Its mean and std are
    given as one value for every channel (as the app graphs write them; MNN's quantizer config needs three)."""
    import dataclasses

    fx = OCR_MODELS["ppocr-cls"]
    root = tmp_path_factory.mktemp("cls_int8")
    write_text_images(root / "calib", "text-line", 12)
    write_text_images(root / "val", "text-line", 3)
    results = edgekit.export(fx.path, target=FORMATS, out=root / "out", input_shapes=[fx.input_shape],
                             precision="int8", calib=[str(root / "calib")], data=[str(root / "val")], samples=3,
                             preprocessing=dataclasses.replace(fx.preprocessing, mean=[0.5], std=[0.5]),
                             max_drop=0.01)
    return {r.format: r for r in results}


@pytest.mark.parametrize("fmt", FORMATS.split(","))
def test_ppocr_cls_int8_meets_its_budget_on_held_out_inputs(cls_int8, fmt):
    r = cls_int8[fmt]
    assert r.ok, r.error
    m = r.manifest
    q = m.precision.quantization
    assert SHAPE <= set(q) and m.precision.requested == "int8"
    assert q["calibration_samples"] == 12 and q["layers_int8"] > 0
    assert q["calibration_drop"] <= 0.01 and q["rounds"][-1]["passed"]
    assert set(q["layers_kept_float"]) == set(q["kept_float_why"])
    v = m.verification
    assert v.passed and "val" in v.inputs and v.samples == 3 and v.tolerances["cos"] == pytest.approx(0.99)
    assert all(o.cosine >= 0.99 and o.top1 == 1.0 for o in v.outputs)
    runner = edgekit.load(r.path)  # the artifact as deployed, through the door
    x = np.zeros([1, 3, 48, 192], np.float32)
    (out,) = runner({"x": x}).values()
    assert out.shape == (1, 2) and np.isfinite(out).all()


def test_the_int8_artifacts_hold_int8_weights(cls_int8):
    """Not a float model labelled int8: each file stores the quantized layers' weights as 8-bit integers."""
    qdq = onnx.load(str(cls_int8["onnx"].path / "model.onnx"))
    int8_weights = [t for t in qdq.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= cls_int8["onnx"].manifest.precision.quantization["layers_int8"]
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) > 0
    xml = (cls_int8["openvino"].path / "model.xml").read_text()
    assert "FakeQuantize" in xml and 'element_type="i8"' in xml
    assert cls_int8["openvino"].manifest.precision.quantization["weights_ratio"] < 0.6
    assert cls_int8["mnn"].manifest.precision.quantization["size_ratio"] < 0.45


def test_inspect_shows_the_quantization(cls_int8):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "inspect", str(cls_int8["mnn"].path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "int8: KL" in proc.stdout and "layers int8" in proc.stdout and "drop on the calibration set" in proc.stdout


@pytest.fixture(scope="session")
def blazeface_int8(tmp_path_factory):
    """BlazeFace short (imported from MediaPipe's TFLite) at int8 on the three formats, one recipe each."""
    fx = MEDIAPIPE_MODELS["blazeface-short"]
    root = tmp_path_factory.mktemp("blazeface_int8")
    model = mediapipe_onnx("blazeface-short", root)
    write_face_images(root / "calib", fx.kind, 8)
    write_face_images(root / "val", fx.kind, 2)
    results = edgekit.export(model, target=FORMATS, out=root / "out", input_shapes=[fx.input_shape],
                             precision="int8", calib=[str(root / "calib")], data=[str(root / "val")],
                             preprocessing=fx.preprocessing, max_drop=0.01, recipe="default")
    return {r.format: r for r in results}


@pytest.mark.parametrize("fmt", FORMATS.split(","))
def test_blazeface_int8_passes_its_gate_or_refuses_with_the_measured_drop(blazeface_int8, fmt):
    r = blazeface_int8[fmt]
    if r.ok:
        assert r.manifest.verification.passed and r.manifest.precision.quantization["layers_int8"] > 0
        return
    assert r.path is None  # refused: nothing written
    assert "converted but wrong against ONNX Runtime" in r.error and "cosine" in r.error, r.error
    q = r.manifest.precision.quantization  # the most accurate attempt, as measured
    assert q["rounds"] and not q["rounds"][-1]["passed"] and q["calibration_drop"] > 0
    assert len(q["rounds"]) > 1 or q["method"].startswith("EMA")  # it tried moving layers to float (MNN's EMA cannot)


def test_openvino_int8_without_nncf_names_the_extra_and_writes_nothing(tmp_path, monkeypatch):
    fx = OCR_MODELS["ppocr-cls"]
    write_text_images(tmp_path / "calib", "text-line", 2)
    monkeypatch.setitem(sys.modules, "nncf", None)  # what Python does for a module that is not installed
    with pytest.raises(EdgekitError, match=r"openvino int8 needs nncf.*pip install 'edgekit\[openvino-int8\]'"):
        edgekit.export(fx.path, target="openvino", out=tmp_path / "out", input_shapes=[fx.input_shape],
                       precision="int8", calib=[str(tmp_path / "calib")], preprocessing=fx.preprocessing)
    assert not (tmp_path / "out").exists()


def test_the_repair_loop_moves_the_ranked_layers_to_float_until_the_gate_passes():
    """The shared loop (edgekit.quantize.repair) on a quantizer whose drop is the sum of its int8 layers' errors."""
    error = {f"l{i}": 0.001 * i for i in range(20)}  # l19 the most harmful

    def attempt(keep):
        quantized = [n for n in error if n not in keep]
        return Attempt(quantized, sum(error[n] for n in quantized), quantized)

    def rank(a):
        return sorted(a.quantized, key=error.get, reverse=True)

    r = within_budget(attempt, rank, max_drop=0.1)
    assert r.drop <= 0.1 and r.rounds[-1]["passed"] and r.rounds[0]["drop"] == pytest.approx(0.19)
    assert {"l19", "l18"} <= set(r.keep) and "l0" not in r.keep
    assert all(why.startswith("round ") for why in r.keep.values())
    json.dumps(r.rounds)  # the manifest stores them


def test_the_repair_loop_leaves_the_best_round_when_none_passes():
    drops = iter([0.5, 0.2, 0.4, 0.2])  # rounds 1-3, then round 2 redone

    def attempt(keep):
        quantized = [f"l{i}" for i in range(10) if f"l{i}" not in keep]
        return Attempt(quantized, next(drops), quantized)

    r = within_budget(attempt, lambda a: a.quantized, max_drop=0.1, rounds=3)
    assert r.drop == 0.2 and len(r.keep) == 1 and r.rounds[-1]["best_redone"] and not r.rounds[-1]["passed"]
