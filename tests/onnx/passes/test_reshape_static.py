"""reshape-static: a Reshape with `0` after a 3-D MatMul (PP-OCRv4 rec's attention) breaks onnx2tf."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import reshape_static
from tests.onnx.passes._helpers import export_one, ort_run


def attention_qkv_net() -> onnx.ModelProto:
    """x[10,12] -> [1,10,12] -> Linear as Reshape(2-D) -> Gemm -> Reshape(3-D) (how onnxslim's Gemm fusion and
    several exporters write a 3-D Linear) -> Reshape([0,10,2,3,4]) -> Transpose: rec's qkv projection, shrunk
    (a 2-D graph input, so onnx2tf keeps its layout)."""
    rng = np.random.default_rng(0)
    i64 = np.int64
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (12, 24)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, 24).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([1, 10, 12], i64), "batched"),
             numpy_helper.from_array(np.array([-1, 12], i64), "flat"),
             numpy_helper.from_array(np.array([1, 10, 24], i64), "unflat"),
             numpy_helper.from_array(np.array([0, 10, 2, 3, 4], i64), "shape")]
    nodes = [helper.make_node("Reshape", ["x", "batched"], ["x3"], name="add_batch"),
             helper.make_node("Relu", ["x3"], ["a"], name="act"),
             helper.make_node("Reshape", ["a", "flat"], ["a2"], name="qkv_pre_reshape"),
             helper.make_node("Gemm", ["a2", "w", "b"], ["g"], name="qkv"),
             helper.make_node("Reshape", ["g", "unflat"], ["qkv_b"], name="qkv_post_reshape"),
             helper.make_node("Reshape", ["qkv_b", "shape"], ["r"], name="split_heads"),
             helper.make_node("Transpose", ["r"], ["y"], name="heads_first", perm=[2, 0, 3, 1, 4])]
    graph = helper.make_graph(nodes, "qkv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 3, 10, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_shape_is_written_out_and_the_numbers_stay():
    x = {"x": np.random.default_rng(1).normal(0, 1, (10, 12)).astype(np.float32)}
    out, changed = reshape_static.run(attention_qkv_net())
    assert changed
    shape = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}["shape"]
    assert shape.tolist() == [1, 10, 2, 3, 4]
    np.testing.assert_array_equal(ort_run(out, x)[0], ort_run(attention_qkv_net(), x)[0])
    assert not reshape_static.run(out)[1]


@pytest.mark.timeout(600)
def test_onnx2tf_fails_on_the_zero_and_converts_with_the_pass(tmp_path):
    """onnx2tf's onnxsim run merges `qkv_post_reshape` into `split_heads`, keeping its `0`, which then copies
    the Gemm output's 10 instead of 1."""
    raw = export_one(attention_qkv_net(), "tflite", tmp_path, passes=[])
    assert not raw.ok and "split_heads" in raw.error, raw.error
    fixed = export_one(attention_qkv_net(), "tflite", tmp_path, passes=["reshape-static"])
    assert fixed.ok, fixed.error
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.9999
