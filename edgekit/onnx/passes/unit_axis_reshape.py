"""Write a Reshape that only removes or inserts axes of length 1 as the Squeeze / Unsqueeze it is.

Why: pnnx decides which axis of every blob is ncnn's dropped batch axis by propagating it through the graph,
and gives up at a Reshape whose target shape has no 1 at the batch position; its ncnn writer then leaves the
op as a raw `Tensor.reshape` layer that ncnn cannot create ("ignore Tensor.reshape ... param shape=(1,16)"),
or writes an ncnn Reshape over the wrong axes, which runs and gives wrong numbers (max abs 0.57 on
tests/onnx/passes/test_unit_axis_reshape.py's model).
Recurrent models hit this after their state: an LSTM's final hidden state h_T is [D=1, B=1, H] and the head
reshapes it to [1, H] (`h.view(1, -1)`, `h.reshape(B, H)`), so the batch axis of the state (axis 1) moves to
axis 0 (the streaming VAD family in tests/families.py: "pnnx left ops that ncnn cannot run: Tensor.reshape").
Squeeze and Unsqueeze name the axes they remove or insert, which pnnx maps to ncnn Squeeze / ExpandDims with
the batch axis accounted for.

Exactness: removing or inserting length-1 axes keeps every element in place (row-major order unchanged), so
the rewrite is the same function. The axes are matched from the right (trailing axes line up, leading unit
axes are the ones removed or inserted). Needs static shapes (export fixes them first); a Reshape whose shapes
are not both known, or that changes an axis longer than 1, is left alone."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph_edit import remove_dead, static_shapes


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    shapes = static_shapes(model)
    if shapes is None:
        return model, False
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    g = model.graph
    taken = {i.name for i in g.initializer} | {o for n in g.node for o in n.output}
    changed = False
    for k, node in enumerate(list(g.node)):
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx"):
            continue
        src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
        if src is None or dst is None or src == dst:
            continue
        op, axes = (("Squeeze", unit_axes(src, dst)) if len(src) > len(dst)
                    else ("Unsqueeze", unit_axes(dst, src, keep_leading=True)))
        if axes is None:
            continue
        name = node.name or node.output[0]
        if opset >= 13:
            const = _fresh(f"{name}_axes", taken)
            g.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), const))
            new = helper.make_node(op, [node.input[0], const], [node.output[0]], name=name)
        else:
            new = helper.make_node(op, [node.input[0]], [node.output[0]], name=name, axes=axes)
        g.node.remove(node)
        g.node.insert(k, new)
        changed = True
    if changed:
        remove_dead(g)  # the shape constants no other node reads
    return model, changed


def unit_axes(longer: list[int], shorter: list[int], keep_leading: bool = False) -> list[int] | None:
    """The axes of `longer` (all of length 1) whose removal gives `shorter`, matched from the right; None if
    `shorter` is not `longer` without some unit axes.

    `keep_leading` (inserting axes): a leading 1 of `shorter` stays axis 0, the new unit axes go after it (the
    same function). pnnx takes that axis as the batch axis it drops; an Unsqueeze at axis 0 of [1, 60, 120]
    (PP-OCRv4 rec at 48x480) became an ncnn ExpandDims that crashes ncnn's Extractor.extract, at axis 1 it
    converts and verifies. Removing keeps the right-hand match: a recurrent state [D=1, B=1, H] -> [1, H]
    drops axis 0, its batch axis being axis 1."""
    if keep_leading and len(longer) > 1 and shorter and longer[0] == 1 and shorter[0] == 1:
        inner = unit_axes(longer[1:], shorter[1:], keep_leading)
        return [a + 1 for a in inner] if inner else None
    axes, j = [], len(shorter) - 1
    for i in range(len(longer) - 1, -1, -1):
        if j >= 0 and longer[i] == shorter[j]:
            j -= 1
        elif longer[i] == 1:
            axes.append(i)
        else:
            return None
    return sorted(axes) if j == -1 and axes else None


def _fresh(base: str, taken: set) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}{i}"
    taken.add(name)
    return name
