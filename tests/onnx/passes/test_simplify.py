"""simplify: onnxslim folds shape subgraphs, but must leave a 3-D MatMul + Add alone (no Gemm fusion), or pnnx
loses the attention pattern of PP-OCRv4 rec (see the pass's docstring)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import simplify
from tests.onnx.passes._helpers import ort_run


def linear3d_net() -> onnx.ModelProto:
    """x[1,10,12] -> MatMul -> Add -> Reshape via a Shape -> Gather -> Concat subgraph (foldable)."""
    rng = np.random.default_rng(0)
    i64 = np.int64
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (12, 24)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, 24).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([0], i64), "i0"),
             numpy_helper.from_array(np.array([10, 2, 12], i64), "rest")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"], name="mm"),
             helper.make_node("Add", ["mm", "b"], ["lin"], name="bias"),
             helper.make_node("Shape", ["lin"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "i0"], ["n"], name="batch", axis=0),
             helper.make_node("Concat", ["n", "rest"], ["target"], name="target", axis=0),
             helper.make_node("Reshape", ["lin", "target"], ["y"], name="reshape")]
    graph = helper.make_graph(nodes, "linear3d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10, 2, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_shape_subgraph_folds_and_matmul_stays():
    x = {"x": np.random.default_rng(1).normal(0, 1, (1, 10, 12)).astype(np.float32)}
    out, changed = simplify.run(linear3d_net())
    assert changed
    ops = [n.op_type for n in out.graph.node]
    assert "Shape" not in ops and "Gather" not in ops  # folded
    assert "MatMul" in ops and "Gemm" not in ops  # not fused
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(linear3d_net(), x)[0], rtol=1e-6, atol=1e-6)
