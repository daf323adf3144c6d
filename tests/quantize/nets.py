"""Small ONNX models for the int8 tests, converted to ncnn with pnnx the way edgekit does (fp16=0)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.base import ConvertOptions
from edgekit.backends.ncnn import BACKEND
from edgekit.manifest import TensorSpec


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _model(nodes, inits, x_shape, y_name, y_shape, opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "int8_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def single_conv(seed=0, k=3, stride=1) -> onnx.ModelProto:
    """x[1,8,16,16] -> Conv(16, kxk, pad) with bias."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[k // 2] * 4, strides=[stride] * 2)]
    oh = (16 + 2 * (k // 2) - k) // stride + 1
    return _model(nodes, [_init("w", rng.normal(0, 0.3, (16, 8, k, k))), _init("b", rng.normal(0, 0.1, 16))],
                  [1, 8, 16, 16], "y", [1, 16, oh, oh])


def depthwise_conv(seed=1) -> onnx.ModelProto:
    """x[1,8,16,16] -> depthwise Conv(group=8, 3x3, pad 1) with bias."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dw", pads=[1] * 4, group=8)]
    return _model(nodes, [_init("w", rng.normal(0, 0.5, (8, 1, 3, 3))), _init("b", rng.normal(0, 0.1, 8))],
                  [1, 8, 16, 16], "y", [1, 8, 16, 16])


def gemm(seed=2) -> onnx.ModelProto:
    """x[1,64] -> Gemm(transB) to 32 (pnnx makes it an InnerProduct)."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)]
    return _model(nodes, [_init("w", rng.normal(0, 0.2, (32, 64))), _init("b", rng.normal(0, 0.1, 32))],
                  [1, 64], "y", [1, 32])


def conv_chain(seed=3) -> onnx.ModelProto:
    """x[1,4,16,16] -> conv_a (3x3) -> relu -> conv_b (1x1) -> y: two quantizable layers, one can stay float."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "wb", "bb"], ["y"], name="conv_b")]
    inits = [_init("wa", rng.normal(0, 0.3, (12, 4, 3, 3))), _init("ba", rng.normal(0, 0.1, 12)),
             _init("wb", rng.normal(0, 0.3, (6, 12, 1, 1))), _init("bb", rng.normal(0, 0.1, 6))]
    return _model(nodes, inits, [1, 4, 16, 16], "y", [1, 6, 16, 16])


def to_ncnn(model: onnx.ModelProto, folder: Path) -> tuple[Path, Path]:
    """pnnx-convert `model` as edgekit's ncnn backend does; returns (param, bin)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "src.onnx"
    onnx.save(model, str(src))
    work = folder / "work"
    work.mkdir(exist_ok=True)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    g = model.graph

    def shape(vi):
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]

    ins = [TensorSpec(vi.name, "float32", shape(vi)) for vi in g.input]
    outs = [TensorSpec(vi.name, "float32", shape(vi)) for vi in g.output]
    BACKEND.convert(src, out, ins, outs, ConvertOptions(precision="fp32", workdir=work))
    return out / "model.ncnn.param", out / "model.ncnn.bin"


def matmul_2d(seed=5) -> onnx.ModelProto:
    """x[1,8,16] -> MatMul W[16,12] + b: a per-row linear on a 2D blob (pnnx writes Gemm, as in PP-OCR rec)."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="bias")]
    return _model(nodes, [_init("w", rng.normal(0, 0.3, (16, 12))), _init("b", rng.normal(0, 0.1, 12))],
                  [1, 8, 16], "y", [1, 8, 12])


def affine_blocks(seed=6) -> onnx.ModelProto:
    """x[1,8,16,16] -> dw 3x3 -> *a+b -> HardSwish -> *a+b -> conv 1x1 -> *a+b -> HardSwish -> *a+b -> dw 3x3
    (pad 1) -> y: PP-LCNetV3's learnable affine blocks around every activation, as scalar Mul/Add nodes."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"

    def affine(tag):
        nonlocal x
        inits.extend([_init(f"{tag}_a", [rng.uniform(0.4, 2.0)]), _init(f"{tag}_b", [rng.normal(0, 0.5)])])
        nodes.extend([helper.make_node("Mul", [x, f"{tag}_a"], [f"{tag}_m"], name=f"{tag}_mul"),
                      helper.make_node("Add", [f"{tag}_m", f"{tag}_b"], [f"{tag}_y"], name=f"{tag}_add")])
        x = f"{tag}_y"

    def conv(tag, w, group, pad):
        nonlocal x
        inits.extend([_init(f"{tag}_w", w), _init(f"{tag}_bias", rng.normal(0, 0.1, w.shape[0]))])
        nodes.append(helper.make_node("Conv", [x, f"{tag}_w", f"{tag}_bias"], [f"{tag}_o"], name=tag,
                                      pads=[pad] * 4, group=group))
        x = f"{tag}_o"

    def hswish(tag):
        nonlocal x
        nodes.append(helper.make_node("HardSwish", [x], [f"{tag}_o"], name=tag))
        x = f"{tag}_o"

    conv("dw1", rng.normal(0, 0.5, (8, 1, 3, 3)), 8, 1)
    affine("l1"), hswish("hs1"), affine("l2")
    conv("pw", rng.normal(0, 0.3, (16, 8, 1, 1)), 1, 0)
    affine("l3"), hswish("hs2"), affine("l4")
    conv("dw2", rng.normal(0, 0.5, (16, 1, 3, 3)), 16, 1)
    nodes[-1].output[0] = "y"
    return _model(nodes, inits, [1, 8, 16, 16], "y", [1, 16, 16, 16], opset=14)  # HardSwish: opset 14


def conv_pair(seed=7) -> onnx.ModelProto:
    """x[1,8,12,12] -> conv_a (3x3, 16) -> conv_b (1x1, 8) -> y: two int8 convolutions in a row, no activation."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1] * 4),
             helper.make_node("Conv", ["a", "wb", "bb"], ["y"], name="conv_b")]
    inits = [_init("wa", rng.normal(0, 0.3, (16, 8, 3, 3))), _init("ba", rng.normal(0, 0.1, 16)),
             _init("wb", rng.normal(0, 0.3, (8, 16, 1, 1))), _init("bb", rng.normal(0, 0.1, 8))]
    return _model(nodes, inits, [1, 8, 12, 12], "y", [1, 8, 12, 12])


def conv_dw_conv(seed=8) -> onnx.ModelProto:
    """x[1,8,12,12] -> conv_a (1x1, 16) -> relu -> dw (3x3, group 16) -> conv_b (1x1, 8) -> y: a depthwise layer
    that reads and writes int8 when fused."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "wd", "bd"], ["d"], name="dw", pads=[1] * 4, group=16),
             helper.make_node("Conv", ["d", "wb", "bb"], ["y"], name="conv_b")]
    inits = [_init("wa", rng.normal(0, 0.3, (16, 8, 1, 1))), _init("ba", rng.normal(0, 0.1, 16)),
             _init("wd", rng.normal(0, 0.5, (16, 1, 3, 3))), _init("bd", rng.normal(0, 0.1, 16)),
             _init("wb", rng.normal(0, 0.3, (8, 16, 1, 1))), _init("bb", rng.normal(0, 0.1, 8))]
    return _model(nodes, inits, [1, 8, 12, 12], "y", [1, 8, 12, 12])


def conv_fork(seed=9) -> onnx.ModelProto:
    """x[1,8,12,12] -> conv_a (3x3, 16) -> {conv_b, conv_c} (1x1, 8 each) -> Add -> y: one blob, two consumers
    (ncnn puts a Split between)."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1] * 4),
             helper.make_node("Conv", ["a", "wb", "bb"], ["b"], name="conv_b"),
             helper.make_node("Conv", ["a", "wc", "bc"], ["c"], name="conv_c"),
             helper.make_node("Add", ["b", "c"], ["y"], name="add")]
    inits = [_init("wa", rng.normal(0, 0.3, (16, 8, 3, 3))), _init("ba", rng.normal(0, 0.1, 16)),
             _init("wb", rng.normal(0, 0.3, (8, 16, 1, 1))), _init("bb", rng.normal(0, 0.1, 8)),
             _init("wc", rng.normal(0, 0.3, (8, 16, 1, 1))), _init("bc", rng.normal(0, 0.1, 8))]
    return _model(nodes, inits, [1, 8, 12, 12], "y", [1, 8, 12, 12])
