"""Turn a `DepthToSpace` in DCR mode (ONNX's default, TensorFlow's `depth_to_space`) into CRD mode with the
channels reordered first.

Why: pnnx translates `DepthToSpace` only in CRD mode (PyTorch's pixel_shuffle, ncnn's PixelShuffle); a DCR
one stays a raw ONNX `DepthToSpace` layer that ncnn cannot create. MediaPipe's sparse full-range BlazeFace
(after `edgekit import`) upsamples its two heads this way ("pnnx left ops that ncnn cannot run: DepthToSpace").
With block b and C' = C / b^2 output channels, DCR reads input channel (k * C' + c) where CRD reads
(c * b^2 + k), k = the position inside the block, so DCR(x) == CRD(x[:, perm]) with
perm[c * b^2 + k] = k * C' + c. The reorder is folded into the producing Conv's weights when that Conv is
ungrouped and feeds nothing else; otherwise a 1x1 Conv with a permutation matrix (exact in fp32) does it."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    targets = [n for n in model.graph.node if n.op_type == "DepthToSpace" and _mode(n) == "DCR"]
    if not targets:
        return model, False
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
              for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    outputs = {o.name for o in model.graph.output}
    changed = False
    for node in targets:
        b = next(a.i for a in node.attribute if a.name == "blocksize")
        conv = producers.get(node.input[0])
        channels = (shapes.get(node.input[0]) or [None, None])[1]
        if channels is None and conv is not None and conv.op_type == "Conv" and conv.input[1] in inits:
            channels = inits[conv.input[1]].dims[0]
        if not channels or channels % (b * b):
            continue
        c_out = channels // (b * b)
        j = np.arange(channels)
        perm = (j % (b * b)) * c_out + j // (b * b)
        if _fold(conv, perm, inits, uses, outputs, node.input[0]):
            pass
        else:
            name = f"{node.name or 'depth_to_space'}_dcr_to_crd"
            w = np.zeros((channels, channels, 1, 1), np.float32)
            w[j, perm, 0, 0] = 1.0
            model.graph.initializer.append(numpy_helper.from_array(w, f"{name}_weight"))
            reordered = f"{name}_out"
            model.graph.node.insert(list(model.graph.node).index(node),
                                    helper.make_node("Conv", [node.input[0], f"{name}_weight"], [reordered], name=name))
            node.input[0] = reordered
        _set_mode(node, "CRD")
        changed = True
    return model, changed


def _mode(node) -> str:
    return next((a.s.decode() for a in node.attribute if a.name == "mode"), "DCR")


def _set_mode(node, mode: str) -> None:
    for a in node.attribute:
        if a.name == "mode":
            a.s = mode.encode()
            return
    node.attribute.append(helper.make_attribute("mode", mode))


def _fold(conv, perm, inits, uses, outputs, tensor) -> bool:
    """Reorder an ungrouped Conv's output channels in place (weights and bias), when nothing else sees them."""
    if conv is None or conv.op_type != "Conv" or uses.get(tensor, 0) != 1 or tensor in outputs:
        return False
    if any(a.name == "group" and a.i != 1 for a in conv.attribute):
        return False
    params = [n for n in conv.input[1:3] if n]
    if not all(n in inits and uses.get(n, 0) == 1 for n in params):
        return False
    for n in params:
        arr = numpy_helper.to_array(inits[n])
        if arr.shape[0] != len(perm):
            return False
    for n in params:
        inits[n].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[n])[perm], n))
    return True
