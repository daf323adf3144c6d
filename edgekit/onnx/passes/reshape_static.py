"""Spell out `0` (copy this axis) and `-1` (infer) in constant Reshape shapes, from the statically known
output shape.

Why: onnxslim (our simplify pass) fuses a 3-D `MatMul` + `Add` into `Reshape(2-D) -> Gemm -> Reshape(3-D)`, and
onnx2tf then runs onnxsim, which merges that last Reshape into a following one and keeps the follower's shape
as written. PP-OCRv4 rec's attention reshapes [1,40,360] with [0,40,3,8,15]: after the merge the input is the
Gemm's [40,360], `0` copies 40 instead of 1, and onnx2tf fails at node p2o.Reshape.67 with "Cannot reshape a
tensor with 14400 elements to shape [40,40,3,8,15]". With the shape written out ([1,40,3,8,15]) the merge is
harmless. Needs static shapes (export fixes them first); a Reshape whose output shape is not known statically
is left alone."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph_edit import static_shapes


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    shapes = static_shapes(model)
    if shapes is None:
        return model, False
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    changed = False
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            continue  # with allowzero, 0 means a real zero-size axis
        shape = numpy_helper.to_array(inits[node.input[1]])
        out = shapes.get(node.output[0])
        if out is None or len(out) != shape.size or not np.any((shape == 0) | (shape == -1)):
            continue
        explicit = numpy_helper.from_array(np.array(out, dtype=shape.dtype), f"{node.input[1]}_static")
        if uses.get(node.input[1], 0) == 1:
            explicit.name = node.input[1]
            inits[node.input[1]].CopyFrom(explicit)
        else:
            i = 0
            while any(x.name == f"{explicit.name}{i or ''}" for x in model.graph.initializer):
                i += 1
            explicit.name = f"{explicit.name}{i or ''}"
            model.graph.initializer.append(explicit)
            node.input[1] = explicit.name
        changed = True
    return model, changed
