"""unit-axis-reshape: pnnx loses the batch axis at a Reshape of a recurrent state [1,1,H] -> [1,H] (a Tensor.reshape
ncnn cannot create, or wrong numbers); written as the Squeeze it is, it converts exactly."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import unit_axis_reshape
from tests.onnx.passes._helpers import export_one, ort_run


def state_head(opset=17) -> onnx.ModelProto:
    """x[1,8,4] (features x frames) -> Conv1d k1 -> frames first [4,1,16] (the batch axis is now axis 1, as in a
    recurrent model's sequence) -> max over frames, keepdims [1,1,16] (a final state, [D, B, H]) -> Reshape
    [1,16] -> Linear -> Sigmoid -> Reshape [1,1,1,1] (an Unsqueeze written as a Reshape)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (16, 8, 1)).astype(np.float32), "cw"),
             numpy_helper.from_array(np.array([1, 16], np.int64), "flat"),
             numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "four"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 1)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv1d"),
             helper.make_node("Transpose", ["c"], ["seq"], name="frames_first", perm=[2, 0, 1]),
             helper.make_node("ReduceMax", ["seq"], ["h"], name="pool", axes=[0], keepdims=1),
             helper.make_node("Reshape", ["h", "flat"], ["h2"], name="h_flat"),
             helper.make_node("MatMul", ["h2", "w"], ["m"], name="head"),
             helper.make_node("Sigmoid", ["m"], ["p"], name="prob"),
             helper.make_node("Reshape", ["p", "four"], ["y"], name="to_4d")]
    graph = helper.make_graph(nodes, "state_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("opset", [11, 17])
def test_unit_axis_reshapes_become_squeeze_and_unsqueeze_with_the_same_numbers(opset):
    feeds = {"x": np.random.default_rng(1).normal(0, 1, (1, 8, 4)).astype(np.float32)}
    before = ort_run(state_head(opset), feeds)[0]
    out, changed = unit_axis_reshape.run(state_head(opset))
    assert changed
    assert [n.op_type for n in out.graph.node] == ["Conv", "Transpose", "ReduceMax", "Squeeze", "MatMul", "Sigmoid",
                                                  "Unsqueeze"]
    onnx.checker.check_model(out)
    np.testing.assert_array_equal(ort_run(out, feeds)[0], before)
    assert "flat" not in {i.name for i in out.graph.initializer}


def test_axes_are_matched_from_the_right_and_other_reshapes_are_left_alone():
    assert unit_axis_reshape.unit_axes([1, 1, 16], [1, 16]) == [0]
    assert unit_axis_reshape.unit_axes([1, 4, 1, 16], [4, 16]) == [0, 2]
    assert unit_axis_reshape.unit_axes([2, 8], [16]) is None  # merges real axes: a true reshape
    assert unit_axis_reshape.unit_axes([1, 16, 1], [16, 2]) is None
    # inserting: a leading 1 (the batch axis a converter drops) stays axis 0
    assert unit_axis_reshape.unit_axes([1, 1, 60, 120], [1, 60, 120]) == [0]
    assert unit_axis_reshape.unit_axes([1, 1, 60, 120], [1, 60, 120], keep_leading=True) == [1]
    assert unit_axis_reshape.unit_axes([1, 1, 1, 1], [1, 1], keep_leading=True) == [2, 3]
    assert unit_axis_reshape.unit_axes([1, 4, 1], [4], keep_leading=True) == [0, 2]  # no leading 1 to keep


def test_ncnn_converts_the_state_head_only_with_the_rewrite(tmp_path):
    raw = export_one(state_head(), "ncnn", tmp_path, [])
    assert not raw.ok, raw.attempts  # pnnx gives up on the batch axis at the Reshape: wrong numbers
    fixed = export_one(state_head(), "ncnn", tmp_path, ["unit-axis-reshape"])
    assert fixed.ok, fixed.error
    assert fixed.manifest.passes == ["unit-axis-reshape"]
