"""What an ONNX model takes and gives: tensor specs, opsets and an op histogram."""
from __future__ import annotations

import collections

import onnx
from onnx import helper

from ..manifest import TensorSpec


def dtype_name(elem_type: int) -> str:
    return helper.tensor_dtype_to_np_dtype(elem_type).name


def _dims(value_info: onnx.ValueInfoProto) -> list:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    out = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or f"?{i}")
    return out


def graph_inputs(model: onnx.ModelProto) -> list[TensorSpec]:
    """Real inputs (initializers listed as inputs in old opsets are skipped)."""
    inits = {i.name for i in model.graph.initializer}
    return [TensorSpec(v.name, dtype_name(v.type.tensor_type.elem_type), _dims(v))
            for v in model.graph.input if v.name not in inits]


def graph_outputs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [TensorSpec(v.name, dtype_name(v.type.tensor_type.elem_type), _dims(v)) for v in model.graph.output]


def opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in model.graph.node)
    return dict(counts.most_common())


def is_static(shape: list) -> bool:
    return all(isinstance(d, int) for d in shape)


def summary(model: onnx.ModelProto) -> dict:
    return {
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "ir_version": model.ir_version,
        "opset": opset(model),
        "nodes": len(model.graph.node),
        "parameters": sum(_numel(t) for t in model.graph.initializer),
        "inputs": graph_inputs(model),
        "outputs": graph_outputs(model),
        "ops": op_histogram(model),
    }


def _numel(t: onnx.TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n
