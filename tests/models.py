"""Small ONNX models built with the onnx helper API, for fast unit tests (real models live in fixtures)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def conv_net(batch="N", h=16, w=16, seed=0) -> onnx.ModelProto:
    """x[N,3,H,W] -> conv3x3 -> relu -> two outputs: the feature map `feat` [N,4,H,W] and
    `prob` [N,5] = softmax(gemm(global-avg-pool)). Exercises 4D and 2D outputs, layouts and batch handling."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["feat"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["feat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    inits = [_init("w1", rng.normal(0, 0.5, (4, 3, 3, 3))), _init("b1", rng.normal(0, 0.1, 4)),
             _init("w2", rng.normal(0, 0.5, (5, 4))), _init("b2", rng.normal(0, 0.1, 5))]
    graph = helper.make_graph(
        nodes, "conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, h, w])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [batch, 4, h, w]),
         helper.make_tensor_value_info("prob", TensorProto.FLOAT, [batch, 5])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def offset_net(offset: float = 1000.0) -> onnx.ModelProto:
    """x[1,3,8,8] -> conv -> +offset -> conv -> -offset -> relu. Exact in fp32; in bf16/fp16 the stored
    `+offset` tensor keeps only ~3 significant digits, so the node that subtracts the offset (`sub_offset`) is
    the first whose output loses the signal. A known divergence for bisect to find."""
    rng = np.random.default_rng(3)
    eye = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv_in", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c0", "off"], ["a"], name="add_offset"),
        helper.make_node("Conv", ["a", "eye"], ["c1"], name="conv_mid"),
        helper.make_node("Sub", ["c1", "off"], ["s"], name="sub_offset"),
        helper.make_node("Relu", ["s"], ["y"], name="relu_out"),
    ]
    inits = [_init("w0", rng.normal(0, 0.3, (3, 3, 3, 3))), _init("eye", eye), _init("off", [offset])]
    graph = helper.make_graph(nodes, "offset_net",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgekit-tests")
    model.ir_version = 8
    return model
