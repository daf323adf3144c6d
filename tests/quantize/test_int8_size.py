"""What an int8 artifact stores (issue 13: int8 <= 0.35x of fp32): ONNX QDQ without the quantizer's long names and
with the kept-float layers' weights in fp16, on a small helper-API model of the conv + matmul family; the real
models' sizes are asserted in test_rec_det_precisions.py and test_int8_formats.py."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.quantize import onnx_qdq


def _conv_matmul(path):
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, [32, 3, 3, 3]).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.1, [32, 32, 3, 3]).astype(np.float32), "w2")
    w3 = numpy_helper.from_array(rng.normal(0, 0.1, [32, 16]).astype(np.float32), "w3")
    shape = numpy_helper.from_array(np.array([1, 32, -1], np.int64), "shape")
    perm_nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Reshape", ["r2", "shape"], ["flat"], name="flat"),
        helper.make_node("Transpose", ["flat"], ["t"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["t", "w3"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(perm_nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 16])],
                              [w1, w2, w3, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return model


def _fused(path, tmp_path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sorted(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)


def test_qdq_keeps_short_names_and_fp16_weights_for_float_layers(tmp_path):
    src, dst = tmp_path / "m.onnx", tmp_path / "q.onnx"
    _conv_matmul(src)
    rng = np.random.default_rng(1)
    samples = [{"x": rng.normal(0, 1, [1, 3, 8, 8]).astype(np.float32)} for _ in range(4)]
    assert onnx_qdq.quantize_qdq(src, dst, samples, {"conv2"}) == ["conv1", "fc"]
    q = onnx.load(str(dst))
    inits = {t.name: t for t in q.graph.initializer}
    conv2 = next(n for n in q.graph.node if n.name == "conv2")
    cast = next(n for n in q.graph.node if n.output[0] == conv2.input[1])  # conv2 kept float: fp16 weight + Cast
    assert cast.op_type == "Cast" and inits[cast.input[0]].data_type == TensorProto.FLOAT16
    assert "w2" not in inits  # no fp32 copy left
    assert {inits[n.input[0]].data_type for n in q.graph.node if n.op_type == "DequantizeLinear"
            and n.input[0] in inits} == {TensorProto.INT8}  # quantized weights stay int8
    added = [t for n in q.graph.node for t in list(n.input) + list(n.output)]
    assert all(len(t) <= 6 or t in {"x", "y", "c1", "r1", "c2", "r2", "flat", "t", "shape"} for t in added), added
    assert {n.name for n in q.graph.node if n.op_type in onnx_qdq.LAYER_OPS} == {"conv1", "conv2", "fc"}
    # ONNX Runtime folds the Cast away at load and still fuses the int8 layers; fp32 compute for conv2
    ops = _fused(dst, tmp_path)
    assert "Cast" not in ops and "QLinearConv" in ops
    ref = onnx_qdq.run_onnx(src, samples)
    got = onnx_qdq.run_onnx(dst, samples)
    for r, g in zip(ref, got):
        assert np.corrcoef(r["y"].ravel(), g["y"].ravel())[0, 1] > 0.99
    # the ranking reads the fp32 model's tensor names in the compacted QDQ model
    assert set(onnx_qdq.local_errors(src, dst, samples)) == {"conv1", "conv2", "fc"}
