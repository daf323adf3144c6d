"""Rewrite strided `Slice`s (step > 1) into reshapes and step-1 slices, and YOLOv5's Focus layer (space-to-depth
by four step-2 Slices concatenated on channels) into one pixel-unshuffle.

Why: pnnx turns an ONNX Slice with a step into `Tensor.slice`, which ncnn cannot create ("pnnx left ops that
ncnn cannot run: Tensor.slice"): ncnn's Crop has no step. Every YOLOv5 (v1-v6.0) export starts with the Focus
layer `cat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2], 1)`, and strided slices
appear wherever a model subsamples a tensor. ONNX's `SpaceToDepth` is no way out: pnnx maps it to
`F.pixel_unshuffle` (channel c*b*b + k) although ONNX's op orders channels k*C + c (DCR), so ncnn runs it
but with shuffled channels (measured: cosine 0.25 against ONNX Runtime on a 3-channel input).

Focus: X[N,C,H,W] -> Reshape [N,C,H/b,b,W/b,b] -> Transpose [0,1,3,5,2,4] -> Reshape [N,C*b*b,H/b,W/b] is
exactly torch's pixel_unshuffle (pnnx fuses these three into `F.pixel_unshuffle`, ncnn `Reorg` with mode 1):
channel c*b*b + i*b + j holds X[:, c, i::b, j::b]. The Focus output's channel p*C + c is piece p (offsets
(i_p, j_p)) = that channel, so Focus = U[:, perm] with perm[p*C + c] = c*b*b + i_p*b + j_p. The permutation is
folded into the consuming Convs' input-channel weights (W'[:, perm] = W; a reordering of the same sum) when
every consumer is an ungrouped Conv with a private weight; otherwise a 1x1 Conv with a 0/1 permutation matrix
does it (x*1 + 0s: exact in fp32 and fp16).

Any other Slice with step s > 1 on axis k >= 1 of a static tensor [N, d1, ..., d_{R-1}]: the selected
elements a, a+s, ..., a+(n-1)s lie at offset r = a mod s inside the n blocks of s starting at block a // s,
so Slice(axis k, [a - r, a - r + n*s)) -> Reshape [N, prod(d1..d_{k-1}), n, s*B] (B = prod of the axes after
k) -> Slice(last axis, [r*B, (r+1)*B)) -> Reshape to the output shape selects exactly those elements, with at
most 4-D tensors (ncnn's limit, batch included). Axes sliced with step 1 in the same node stay in a Slice.
A slice whose blocks would run past the end of the axis, a negative step, or a dynamic shape is left alone.

For ncnn only: MNN, OpenVINO and onnx2tf run strided slices as they are (the Focus detector verifies raw on all
three), and onnx2tf's NCHW->NHWC bookkeeping does not follow the general rewrite's block reshapes (measured:
"onnx2tf failed at node subsample_blocks2")."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph_edit import GraphIndex, remove_dead, static_shapes

INT_MAX = np.iinfo(np.int64).max


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    ctx = _Ctx(model)
    changed = False
    for concat in [n for n in model.graph.node if n.op_type == "Concat"]:
        if _focus(ctx, concat):
            changed = True
    for node in [n for n in model.graph.node if n.op_type == "Slice"]:
        if _strided(ctx, node):
            changed = True
    if changed:
        remove_dead(model.graph)
    return model, changed


class _Ctx(GraphIndex):
    def __init__(self, model):
        self.model = model
        self.shapes = static_shapes(model) or {}
        for i in model.graph.initializer:
            self.shapes[i.name] = list(i.dims)
        super().__init__(model.graph)

    def const(self, name):
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        p = self.producer.get(name)
        if p is not None and p.op_type == "Constant":
            return numpy_helper.to_array(next(a.t for a in p.attribute if a.name == "value"))
        return None

    def fresh(self, base):
        self.n += 1
        name = f"{base}_ss{self.n}"
        while name in self.shapes or name in self.producer or name in self.inits:
            self.n += 1
            name = f"{base}_ss{self.n}"
        return name

    def i64(self, base, values):
        name = self.fresh(base)
        t = numpy_helper.from_array(np.asarray(values, np.int64), name)
        self.g.initializer.append(t)
        self.inits[name] = t
        return name


def _slice_params(ctx, node, rank):
    """{axis: (start, end, step)} of a Slice with constant parameters, normalised against the input shape."""
    if len(node.input) < 3:
        return None
    starts, ends = ctx.const(node.input[1]), ctx.const(node.input[2])
    axes = ctx.const(node.input[3]) if len(node.input) > 3 and node.input[3] else np.arange(len(starts))
    steps = ctx.const(node.input[4]) if len(node.input) > 4 and node.input[4] else np.ones(len(starts), np.int64)
    shape = ctx.shapes.get(node.input[0])
    if any(v is None for v in (starts, ends, axes, steps)) or shape is None:
        return None
    out = {}
    for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        a = a + rank if a < 0 else a
        d = shape[a]
        if st <= 0:
            return None
        s = min(max(s + d if s < 0 else s, 0), d)
        e = min(max(e + d if e < 0 else e, 0), d)
        out[a] = (s, e, st)
    return out


def _focus(ctx, concat) -> bool:
    shape_out = ctx.shapes.get(concat.output[0])
    axis = next((a.i for a in concat.attribute if a.name == "axis"), 0)
    if shape_out is None or len(shape_out) != 4 or axis % 4 != 1 or len(concat.input) < 4:
        return False
    source, pieces, chain_nodes = None, [], []
    for name in concat.input:
        offsets, cur = {}, name
        while True:
            p = ctx.producer.get(cur)
            if p is None or p.op_type != "Slice":
                break
            if cur != name and (len(ctx.uses.get(cur, [])) != 1 or cur in ctx.outputs):
                return False
            params = _slice_params(ctx, p, 4)
            if params is None:
                return False
            for a, v in params.items():
                if a in offsets:
                    return False
                offsets[a] = v
            chain_nodes.append(p)
            cur = p.input[0]
        if cur == name:
            return False
        if source is None:
            source = cur
        elif cur != source:
            return False
        pieces.append(offsets)
    shape = ctx.shapes.get(source)
    if shape is None or len(shape) != 4:
        return False
    n, c, h, w = shape
    b = len(concat.input) ** 0.5
    if b != int(b) or int(b) < 2:
        return False
    b = int(b)
    if h % b or w % b:
        return False
    seen = []
    for off in pieces:
        for a, (s, e, st) in off.items():
            if a in (0, 1) and (s, e, st) != (0, shape[a], 1):
                return False
        oh, ow = off.get(2, (0, h, 1)), off.get(3, (0, w, 1))
        if oh[2] != b or ow[2] != b or oh[0] >= b or ow[0] >= b \
                or -(-(oh[1] - oh[0]) // b) != h // b or -(-(ow[1] - ow[0]) // b) != w // b:
            return False
        seen.append((oh[0], ow[0]))
    if sorted(seen) != [(i, j) for i in range(b) for j in range(b)]:
        return False
    perm = np.array([ci * b * b + i * b + j for (i, j) in seen for ci in range(c)])
    base = concat.name or "focus"
    r6, t6, u = ctx.fresh(f"{base}_blocks"), ctx.fresh(f"{base}_blocks_t"), ctx.fresh(f"{base}_unshuffled")
    nodes = [helper.make_node("Reshape", [source, ctx.i64(f"{base}_shape6", [n, c, h // b, b, w // b, b])], [r6],
                              name=f"{base}_reshape6"),
             helper.make_node("Transpose", [r6], [t6], name=f"{base}_transpose", perm=[0, 1, 3, 5, 2, 4]),
             helper.make_node("Reshape", [t6, ctx.i64(f"{base}_shape4", [n, c * b * b, h // b, w // b])],
                              [concat.output[0] if np.array_equal(perm, np.arange(len(perm))) else u],
                              name=f"{base}_reshape4")]
    if not np.array_equal(perm, np.arange(len(perm))):
        if not _fold_into_convs(ctx, concat.output[0], perm, u):
            pw = np.zeros((len(perm), len(perm), 1, 1), np.float32)
            pw[np.arange(len(perm)), perm, 0, 0] = 1.0
            wname = ctx.fresh(f"{base}_perm_w")
            ctx.g.initializer.append(numpy_helper.from_array(pw, wname))
            nodes.append(helper.make_node("Conv", [u, wname], [concat.output[0]], name=f"{base}_channel_perm"))
    idx = list(ctx.g.node).index(concat)
    ctx.g.node.remove(concat)
    for k, nd in enumerate(nodes):
        ctx.g.node.insert(idx + k, nd)
    ctx.refresh()
    return True


def _fold_into_convs(ctx, tensor, perm, new_input) -> bool:
    users = ctx.uses.get(tensor, [])
    if not users or tensor in ctx.outputs:
        return False
    for u in users:
        if u.op_type != "Conv" or u.input[0] != tensor or list(u.input).count(tensor) != 1 \
                or any(a.name == "group" and a.i != 1 for a in u.attribute):
            return False
        w = u.input[1]
        if w not in ctx.inits or len(ctx.uses.get(w, [])) != 1 or ctx.inits[w].dims[1] != len(perm):
            return False
    for u in users:
        w = numpy_helper.to_array(ctx.inits[u.input[1]])
        w2 = np.zeros_like(w)
        w2[:, perm] = w
        ctx.inits[u.input[1]].CopyFrom(numpy_helper.from_array(w2, u.input[1]))
        u.input[0] = new_input
    return True


def _strided(ctx, node) -> bool:
    shape = ctx.shapes.get(node.input[0])
    out_shape = ctx.shapes.get(node.output[0])
    if shape is None or out_shape is None or len(shape) < 2 or len(shape) > 4:
        return False
    params = _slice_params(ctx, node, len(shape))
    if params is None or not any(st > 1 for (_, _, st) in params.values()):
        return False
    plan = []
    dims = list(shape)
    for a in sorted(params):
        s, e, st = params[a]
        if st == 1:
            continue
        if a == 0:
            return False
        cnt = max(0, -(-(e - s) // st))
        r = s % st
        lo = s - r
        if cnt == 0 or lo + cnt * st > dims[a]:
            return False
        plan.append((a, lo, cnt, st, r))
        dims[a] = cnt
    base = node.name or "slice"
    cur = node.input[0]
    new_nodes = []
    dims = list(shape)
    unit = {a: v for a, v in params.items() if v[2] == 1 and (v[0], v[1]) != (0, shape[a])}
    for a, lo, cnt, st, r in plan:
        unit_here = {a: (lo, lo + cnt * st)}
        if a == plan[0][0]:  # the step-1 axes go into the first Slice
            unit_here.update({k: (v[0], v[1]) for k, v in unit.items()})
        if any((v[0], v[1]) != (0, dims[k]) for k, v in unit_here.items()):
            ax = sorted(unit_here)
            nxt = ctx.fresh(f"{base}_range")
            new_nodes.append(helper.make_node(
                "Slice", [cur, ctx.i64(f"{base}_st", [unit_here[k][0] for k in ax]),
                          ctx.i64(f"{base}_en", [unit_here[k][1] for k in ax]), ctx.i64(f"{base}_ax", ax)],
                [nxt], name=f"{base}_range{a}"))
            cur = nxt
            for k in ax:
                dims[k] = unit_here[k][1] - unit_here[k][0]
        inner = int(np.prod(dims[a + 1:])) if a + 1 < len(dims) else 1
        outer = int(np.prod(dims[1:a])) if a > 1 else 1
        r4, p4 = ctx.fresh(f"{base}_blocks"), ctx.fresh(f"{base}_pick")
        new_nodes += [
            helper.make_node("Reshape", [cur, ctx.i64(f"{base}_bs", [dims[0], outer, cnt, st * inner])], [r4],
                             name=f"{base}_blocks{a}"),
            helper.make_node("Slice", [r4, ctx.i64(f"{base}_ps", [r * inner]), ctx.i64(f"{base}_pe", [(r + 1) * inner]),
                                       ctx.i64(f"{base}_pa", [3])], [p4], name=f"{base}_pick{a}")]
        dims[a] = cnt
        nxt = ctx.fresh(f"{base}_picked")
        new_nodes.append(helper.make_node("Reshape", [p4, ctx.i64(f"{base}_os", dims)], [nxt],
                                          name=f"{base}_unblocks{a}"))
        cur = nxt
    if dims != list(out_shape):
        return False
    new_nodes[-1].output[0] = node.output[0]
    idx = list(ctx.g.node).index(node)
    ctx.g.node.remove(node)
    for k, nd in enumerate(new_nodes):
        ctx.g.node.insert(idx + k, nd)
    ctx.refresh()
    return True


