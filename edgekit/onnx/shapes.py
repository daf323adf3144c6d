"""Static shapes: parse `--input-shape NAME:1x3x48x192` and fix a model's dynamic axes with it.

Most edge converters (pnnx, onnx2tf) need static shapes; fixing them on the ONNX side, before any
converter runs, gives every backend the same graph and lets shape inference fold what it can."""
from __future__ import annotations

import re

import onnx

from ..errors import DynamicShape, EdgekitError
from ..manifest import format_shape
from .inspect import graph_inputs, is_static

_SHAPE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_shape_args(args: list[str] | None) -> dict[str, list[int]]:
    """'x:1x3x48x192' (or 'x:1,3,48,192') -> {'x': [1, 3, 48, 192]}."""
    out: dict[str, list[int]] = {}
    for arg in args or []:
        m = _SHAPE.match(arg.strip())
        if not m:
            raise EdgekitError(f"--input-shape '{arg}' does not parse; expected NAME:1x3x224x224")
        dims = [int(d) for d in re.split("[x,]", m["dims"])]
        if any(d <= 0 for d in dims):
            raise EdgekitError(f"--input-shape '{arg}': every dimension must be positive")
        out[m["name"]] = dims
    return out


def resolve_input_shapes(model: onnx.ModelProto, requested: dict[str, list[int]],
                         default_batch: int = 1) -> dict[str, list[int]]:
    """Check requested shapes against the model and fill the rest: a dynamic batch axis becomes 1."""
    inputs = {i.name: i for i in graph_inputs(model)}
    for name, dims in requested.items():
        if name not in inputs:
            raise EdgekitError(f"--input-shape names '{name}', but the model's inputs are: {', '.join(inputs)}")
        spec = inputs[name]
        if spec.shape and len(dims) != len(spec.shape):
            raise EdgekitError(f"--input-shape {name}: {len(dims)} dims given, the input has {len(spec.shape)} "
                               f"({format_shape(spec.shape)})")
        for i, (want, have) in enumerate(zip(dims, spec.shape)):
            if isinstance(have, int) and have != want:
                raise EdgekitError(f"--input-shape {name}: axis {i} is fixed to {have} in the model, not {want}")
    shapes = {}
    for name, spec in inputs.items():
        if name in requested:
            shapes[name] = requested[name]
            continue
        dims = list(spec.shape)
        if dims and not isinstance(dims[0], int) and len(dims) >= 2:
            dims[0] = default_batch
        shapes[name] = dims
    return shapes


def dynamic_inputs(shapes: dict[str, list]) -> dict[str, list]:
    return {k: v for k, v in shapes.items() if not is_static(v)}


def require_static(shapes: dict[str, list], why: str) -> None:
    dyn = dynamic_inputs(shapes)
    if dyn:
        name, dims = next(iter(dyn.items()))
        example = "x".join(str(d) if isinstance(d, int) else "N" for d in dims)
        raise DynamicShape(name, format_shape(dims), example, why)


def fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, list]) -> onnx.ModelProto:
    """Return a copy of `model` whose inputs have the given (static) dims, with shapes re-inferred."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if vi.name not in shapes:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, size in zip(dims, shapes[vi.name]):
            if isinstance(size, int):
                d.Clear()
                d.dim_value = size
    # Stale value_info with the old dynamic dims would contradict the new shapes; infer afresh.
    del m.graph.value_info[:]
    for out in m.graph.output:
        if not _static_dims(out):
            out.type.tensor_type.ClearField("shape")
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception:  # inference is a help, not a requirement
        pass
    return m


def _static_dims(vi: onnx.ValueInfoProto) -> bool:
    t = vi.type.tensor_type
    return t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)

