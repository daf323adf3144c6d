"""edgekit check: metrics, tolerances, goldens, clear errors, and bisect on a known divergence."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.harness.check import parse_tolerance, tolerances_for
from edgekit.harness.compare import class_agreement, compare_outputs
from tests.conftest import FORMATS
from tests.models import offset_net, save


def test_metrics_on_known_arrays():
    ref = {"p": np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], np.float32)}
    out = {"p": np.array([[0.1, 0.6, 0.3], [0.2, 0.3, 0.5]], np.float32)}  # second row's argmax flips
    (r,) = compare_outputs([ref], [out], tolerances_for("fp32"))
    assert r.max_abs == pytest.approx(0.3, abs=1e-6) and r.top1 == 0.5 and r.top5 == 1.0
    noise = np.sum((ref["p"].astype(np.float64) - out["p"]) ** 2)
    assert r.snr_db == pytest.approx(10 * math.log10(np.sum(ref["p"].astype(np.float64) ** 2) / noise))
    assert not r.passed and r.needs_atol == pytest.approx(0.3, abs=1e-6)
    assert r.needs_rtol == pytest.approx(0.3 / 0.7, rel=1e-5)
    (same,) = compare_outputs([ref], [ref], tolerances_for("fp32"))
    assert same.passed and same.cosine == pytest.approx(1.0) and math.isinf(same.snr_db)


def test_top5_overlap_and_tolerance_overrides():
    r = np.arange(10, dtype=np.float32)[None]
    o = r.copy()
    o[0, 9] = -1  # the best class drops out of the top 5
    top1, top5 = class_agreement(r, o)
    assert top1 == 0.0 and top5 == pytest.approx(0.8)
    tol = tolerances_for("fp32", atol=parse_tolerance(["1e-2", "p:0.5"], "atol"))
    (res,) = compare_outputs([{"p": r}], [{"p": r + 0.4}], {**tol, "cos": {"*": 0.9}})
    assert res.tolerance["atol"] == 0.5 and res.passed
    with pytest.raises(EdgekitError, match="--rtol"):
        parse_tolerance(["p:lots"], "rtol")


def test_defaults_follow_the_precision():
    assert tolerances_for("fp16")["default"]["cos"] < tolerances_for("fp32")["default"]["cos"]
    assert tolerances_for("int8")["default"]["cos"] < tolerances_for("fp16")["default"]["cos"]


def test_every_backend_passes_and_reports(conv_exports, tmp_path):
    paths = [conv_exports[f].path for f in FORMATS]
    report = edgekit.check(paths, samples=2)
    assert report.passed and [a.format for a in report.artifacts] == FORMATS
    for a in report.artifacts:
        assert a.precision["compute"] == "fp32"
        prob = next(o for o in a.outputs if o.name == "prob")
        assert prob.top1 == 1.0 and prob.cosine > 0.9999
        feat = next(o for o in a.outputs if o.name == "feat")
        assert feat.top1 is None  # a feature map is not class scores
    assert "synthetic image" in report.inputs and "ONNX Runtime fp32" in report.reference


def test_goldens_round_trip(conv_exports, tmp_path):
    art = conv_exports["mnn"].path
    golden = tmp_path / "golden"
    first = edgekit.check([art], golden=golden, samples=3)
    assert (golden / "golden.json").is_file() and len(list(golden.glob("sample_*.npz"))) == 3
    again = edgekit.check([art], golden=golden, model=tmp_path / "not-needed.onnx")  # no model: goldens suffice
    assert again.reference.startswith("saved goldens") and again.samples == 3
    assert again.artifacts[0].outputs[0].max_abs == pytest.approx(first.artifacts[0].outputs[0].max_abs)


def test_mismatched_model_and_bad_data_are_clear_errors(conv_exports, tmp_path):
    art = conv_exports["openvino"].path
    other = save(offset_net(), tmp_path / "other.onnx")
    with pytest.raises(EdgekitError, match="do not match"):
        edgekit.check([art], model=other)
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 9, 9), np.float32))
    with pytest.raises(EdgekitError, match="shape 1x3x9x9"):
        edgekit.check([art], data=[tmp_path / "wrong.npy"])
    np.save(tmp_path / "wrong_dtype.npy", np.zeros((1, 3, 16, 16), np.float64))
    with pytest.raises(EdgekitError, match="dtype float64"):
        edgekit.check([art], data=[tmp_path / "wrong_dtype.npy"])


def test_cli_check_missing_backend_and_reports(conv_exports, tmp_path):
    art = conv_exports["ncnn"].path
    code = "import sys; sys.modules['ncnn'] = None; from edgekit.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "check", str(art)], capture_output=True, text=True)
    assert proc.returncode == 2 and "edgekit[ncnn]" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "check", str(art), str(conv_exports["tflite"].path),
                           "--json", str(tmp_path / "c.json"), "--markdown", str(tmp_path / "c.md")],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["passed"] and len(data["artifacts"]) == 2
    md = (tmp_path / "c.md").read_text()
    assert "| conv_net_ncnn | ncnn | fp32 (fp32) | feat |" in md and "| conv_net_tflite | tflite |" in md


def test_bisect_names_the_known_node(tmp_path):
    """offset_net is exact in fp32; at OpenVINO's fp16 hint (bf16 on AVX-512 bf16 CPUs, else fp16) the
    `+1000` tensor is stored with ~3 digits and the node that subtracts the offset loses the signal."""
    model = save(offset_net(), tmp_path / "off.onnx")
    (r,) = edgekit.export(model, target="openvino", out=tmp_path, precision="fp16", keep_inaccurate=True)
    if r.manifest.precision.compute == "fp32":
        pytest.skip("this CPU runs OpenVINO's f16 hint in fp32: no divergence to find")
    assert r.status == "inaccurate" and r.path.is_dir() and "bisect" in r.error
    report = edgekit.check([r.path], bisect=True)
    b = report.artifacts[0].bisect
    assert not report.passed and b["node"]["name"] == "sub_offset" and b["last_good"] == "conv_mid"
    assert b["conversions"] <= 4  # 5 candidates: the full prefix, then log2 steps
