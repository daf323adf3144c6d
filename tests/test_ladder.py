"""The conversion ladder: each backend's recipes, tried rung by rung until one converts and verifies. The
common case costs one conversion; a model no rung can convert gets one line naming each rung's failure; a
rung can be forced by name."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgekit
from edgekit import backends
from edgekit.errors import EdgekitError
from tests.models import save


def hardmax_model(path):
    """Hardmax: an op that neither pnnx/ncnn nor MNN's converter supports (OpenVINO does)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Hardmax", ["c"], ["y"], name="hardmax", axis=1)]
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    g = helper.make_graph(nodes, "hardmax", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return save(m, path)


def test_every_backend_has_a_ladder_with_the_raw_converter_on_it():
    for fmt in backends.formats():
        ladder = backends.get(fmt).ladder
        assert ladder[0].name == "default" and ladder[-1].name == "raw" and not ladder[-1].passes, fmt
        assert len({r.name for r in ladder}) == len(ladder), fmt


def test_the_common_case_costs_one_conversion(conv_exports, ocr_exports):
    for r in [*conv_exports.values(), *ocr_exports("ppocr-cls").values()]:
        assert r.ok, r.error
        assert r.recipe == "default" and r.conversions == 1, (r.format, r.attempts)
        assert r.manifest.recipe == "default" and [a["status"] for a in r.manifest.attempts] == ["ok"]


def test_a_model_no_rung_converts_names_every_rung_and_leaves_nothing(tmp_path):
    model = hardmax_model(tmp_path / "hardmax.onnx")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "export", model, "--target", "ncnn,openvino",
                           "--out", out, "--json", tmp_path / "r.json"], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(scratch)}, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    ncnn, ov = json.loads((tmp_path / "r.json").read_text())
    assert ov["status"] == "ok" and ov["conversions"] == 1
    tried = [a["recipe"] for a in ncnn["attempts"] if a["status"] != "skipped"]
    assert ncnn["status"] == "failed" and tried == ["default", "raw"] and ncnn["conversions"] == 2
    (rewrites,) = [a for a in ncnn["attempts"] if a["recipe"] == "rewrites"]
    assert rewrites["status"] == "skipped" and rewrites["error"] == "the same model as recipe default"
    for rung in ("recipe default:", "recipe raw:"):
        assert rung in ncnn["error"]
    assert "Hardmax (ONNX node hardmax; ncnn layer" in ncnn["error"] and "another format" in ncnn["error"]
    assert sorted(p.name for p in out.iterdir()) == ["hardmax_openvino"]
    assert list(scratch.iterdir()) == []


def test_a_recipe_can_be_forced_and_an_unknown_one_is_refused(tmp_path, conv_model):
    (r,) = edgekit.export(conv_model, target="mnn", out=tmp_path, input_shapes=["x:1x3x16x16"], recipe="raw")
    assert r.ok and r.recipe == "raw" and [a["recipe"] for a in r.attempts] == ["raw"] and r.manifest.passes == []
    with pytest.raises(EdgekitError, match="mnn has no recipe 'fast'; its ladder: default, rewrites, raw"):
        edgekit.export(conv_model, target="mnn", out=tmp_path / "b", input_shapes=["x:1x3x16x16"], recipe="fast")
    assert not (tmp_path / "b").exists()


def gelu_model(path):
    """A conv followed by GELU written with Erf, as transformers and PP-OCRv6 export it."""
    rng = np.random.default_rng(0)
    inits = [onnx.numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w"),
             onnx.numpy_helper.from_array(np.array(2 ** -0.5, np.float32), "r2"),
             onnx.numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "r2"], ["s"], name="scale"),
             helper.make_node("Erf", ["s"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["a"], name="add"),
             helper.make_node("Mul", ["c", "a"], ["m"], name="mul"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="gelu")]
    g = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return save(m, path)


def test_erf_gelu_climbs_to_the_rung_that_avoids_flex_ops(tmp_path):
    """onnx2tf lowers Erf to FlexErf, which LiteRT cannot run: the artifact is refused before it is written,
    naming the op, and the ladder climbs to its rewrites rung (erf-gelu: the GELU form TensorFlow fuses into
    its builtin GELU), which gives a correct builtin-only model; -rtpo Erf stays as the last rung."""
    model = gelu_model(tmp_path / "gelu.onnx")
    (raw,) = edgekit.export(model, target="tflite", out=tmp_path / "raw", recipe="raw")
    assert not raw.ok and "TensorFlow Select ops that LiteRT cannot run: FlexErf (from ONNX Erf)" in raw.error
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())
    (r,) = edgekit.export(model, target="tflite", out=tmp_path / "out")
    assert r.ok and r.recipe == "rewrites" and "erf-gelu" in r.manifest.passes, r.attempts
    assert min(o.cosine for o in r.manifest.verification.outputs) >= 0.9999
    from edgekit.backends.tflite import select_tf_ops

    assert select_tf_ops(r.path / "model.tflite") == []
