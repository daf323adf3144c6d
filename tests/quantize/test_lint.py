"""The pre-flight lint (edgekit.quantize.lint): each finding kind on a small helper-API model that has the fault,
and none on its twin without it; export prints the findings and records them in the manifest."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit
from edgekit.quantize.lint import lint, message


def _model(nodes, inits, out_shape, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(v, np.int64 if k == "pads" else np.float32), k)
                               for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def concat_net(box_scale: float) -> onnx.ModelProto:
    """Boxes (a conv scaled by box_scale) beside scores (a conv through Sigmoid, 0..1), concatenated."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "wb"], ["boxes"], name="box_conv"),
             helper.make_node("Conv", ["x", "ws"], ["logits"], name="score_conv"),
             helper.make_node("Sigmoid", ["logits"], ["scores"], name="score_sigmoid"),
             helper.make_node("Concat", ["boxes", "scores"], ["y"], name="head_concat", axis=1)]
    return _model(nodes, {"wb": rng.normal(0, 1, (4, 3, 1, 1)) * box_scale, "ws": rng.normal(0, 1, (1, 3, 1, 1))},
                  [1, 5, 8, 8], "concat_net")


def scaled_net(factor: float) -> onnx.ModelProto:
    nodes = [helper.make_node("Mul", ["x", "k"], ["big"], name="blow_up"),
             helper.make_node("Relu", ["big"], ["y"], name="relu")]
    return _model(nodes, {"k": [factor]}, [1, 3, 8, 8], "scaled_net")


def pad_pool_net(value: float) -> onnx.ModelProto:
    nodes = [helper.make_node("Pad", ["x", "pads", "v"], ["padded"], name="pool_pad", mode="constant"),
             helper.make_node("MaxPool", ["padded"], ["y"], name="pool", kernel_shape=[3, 3], strides=[1, 1])]
    return _model(nodes, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "v": [value]}, [1, 3, 8, 8], "pad_pool_net")


SAMPLES = [{"x": np.random.default_rng(i).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)} for i in range(3)]


def test_concat_of_disparate_ranges_is_found_for_int8_only():
    (f,) = lint(concat_net(300.0), SAMPLES, "int8")
    assert f["kind"] == "concat-range" and f["node"] == "head_concat" and f["ratio"] > 50
    assert "score_sigmoid" in f["action"] and "advice" in f["action"]
    assert "head_concat" in message(f)
    assert lint(concat_net(1.0), SAMPLES, "int8") == []  # ranges alike: nothing
    assert lint(concat_net(300.0), SAMPLES, "fp16") == []  # fp16 has no shared scale


def test_activations_beyond_fp16_are_found_for_fp16():
    (f,) = [f for f in lint(scaled_net(1e5), SAMPLES, "fp16") if f["node"] == "blow_up"]
    assert f["kind"] == "fp16-overflow" and f["peak"] > 65504
    assert lint(scaled_net(10.0), SAMPLES, "fp16") == []


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_a_non_zero_constant_pad_before_maxpool_is_found(precision):
    (f,) = lint(pad_pool_net(-3.4e38), SAMPLES, precision)
    assert f["kind"] == "pad-maxpool" and f["node"] == "pool_pad" and "pool" in f["detail"]
    assert "overflows fp16" in f["detail"]
    assert lint(pad_pool_net(0.0), SAMPLES, precision) == []


def test_export_prints_the_findings_and_the_manifest_and_inspect_show_them(tmp_path):
    path = tmp_path / "concat.onnx"
    onnx.save(concat_net(300.0), str(path))
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(6):
        np.save(calib / f"s{i}.npy", np.random.default_rng(10 + i).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32))
    seen = []
    (r,) = edgekit.export(path, target="onnx", out=tmp_path / "out", precision="int8", calib=[str(calib)],
                          progress=lambda fmt, stage: seen.append(stage))
    assert any(s.startswith("lint: concat-range at Concat head_concat") for s in seen)
    (f,) = r.manifest.precision.lint
    assert f["kind"] == "concat-range" and f["node"] == "head_concat"
    assert r.ok, r.error  # ONNX Runtime's QDQ leaves Concat float: this one passes its gate
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "inspect", str(r.path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "lint (int8): 1 finding(s)" in proc.stdout and "head_concat" in proc.stdout
