"""Move a power-of-two scale across `Conv -> [BatchNormalization] -> Relu -> Conv|ConvTranspose` so that both
convolutions' (BatchNorm-folded) weights sit inside fp16's normal range.

Why: pnnx folds BatchNormalization into the Conv before it and, at `fp16=1` (its default, and edgekit's
`--precision fp16`), writes the weights with a float32->float16 cast that flushes every magnitude below
2^-14 (6.1e-5, fp16's smallest normal) to zero (`float32_to_float16` in pnnx's save_ncnn.cpp has no subnormal
branch). PP-OCRv4 det's head Conv sees activations up to ~1900 and its BatchNorm has running variances of
1e7..1e8, so the folded weights are ~1e-5: 95% of them become zero and the probability map comes out with
cosine 0.06..0.15 against ONNX Runtime — the "det converts and runs but gives cosine ~0.12" report, which is
this at pnnx's default fp16 weights. Relu is positively homogeneous, so scaling the first layer's output by
s = 2^k and the next layer's weights by 1/s computes exactly the same function in fp32 (power-of-two products
are exact) while both weight sets become representable in fp16. k balances the two layers' median weight
magnitudes. Pairs whose weights already fit are left alone."""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

FP16_MIN_NORMAL = 2.0 ** -14
TRIGGER = 0.01  # rewrite when more than 1% of the non-zero folded weights would flush to zero


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    consts = _Constants(model)
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}

    def only_consumer(name):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in outputs else None

    changed = False
    for conv in list(model.graph.node):
        if conv.op_type != "Conv" or len(conv.input) < 2 or consts.get(conv.input[1]) is None:
            continue
        nxt = only_consumer(conv.output[0])
        bn = None
        if nxt is not None and nxt.op_type == "BatchNormalization" and all(consts.get(i) is not None
                                                                           for i in nxt.input[1:5]):
            bn, nxt = nxt, only_consumer(nxt.output[0])
        if nxt is None or nxt.op_type != "Relu":
            continue
        second = only_consumer(nxt.output[0])
        if second is None or second.op_type not in ("Conv", "ConvTranspose") or second.input[0] != nxt.output[0] \
                or len(second.input) < 2 or consts.get(second.input[1]) is None:
            continue
        w1 = consts.get(conv.input[1]).astype(np.float64)
        if bn is not None:
            gamma, _, _, var = (consts.get(i).astype(np.float64) for i in bn.input[1:5])
            eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
            w1 = w1 * (gamma / np.sqrt(var + eps)).reshape(-1, *[1] * (w1.ndim - 1))
        a1 = np.abs(w1[w1 != 0])
        a2 = np.abs(consts.get(second.input[1]))
        a2 = a2[a2 != 0]
        if not a1.size or not a2.size or (a1 < FP16_MIN_NORMAL).mean() <= TRIGGER:
            continue
        k = round((math.log2(np.median(a2)) - math.log2(np.median(a1))) / 2)
        if k < 1:
            continue
        s = np.float32(2.0 ** k)
        names = [*bn.input[1:3]] if bn is not None else [n for n in conv.input[1:3] if n]
        if not all(consts.private(n, model) for n in names + [second.input[1]]):
            continue  # a weight shared with another node: scaling it would change that node too
        for n in names:  # BatchNorm: gamma and beta; plain Conv: weight and bias -> output scaled by s
            consts.set(n, consts.get(n) * s)
        consts.set(second.input[1], consts.get(second.input[1]) / s)
        changed = True
    return model, changed


class _Constants:
    """Read and replace constant tensors, whether initializers or Constant nodes."""

    def __init__(self, model: onnx.ModelProto):
        self.inits = {i.name: i for i in model.graph.initializer}
        self.nodes = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"
                      and any(a.name == "value" for a in n.attribute)}
        self.uses: dict[str, int] = {}
        for node in model.graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1

    def get(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        if name in self.nodes:
            return numpy_helper.to_array(next(a.t for a in self.nodes[name].attribute if a.name == "value"))
        return None

    def private(self, name: str, model) -> bool:
        graph_outputs = {o.name for o in model.graph.output}
        return self.uses.get(name, 0) == 1 and name not in graph_outputs

    def set(self, name: str, value: np.ndarray) -> None:
        if name in self.inits:
            dtype = numpy_helper.to_array(self.inits[name]).dtype
            self.inits[name].CopyFrom(numpy_helper.from_array(value.astype(dtype), name))
        else:
            attr = next(a for a in self.nodes[name].attribute if a.name == "value")
            dtype = numpy_helper.to_array(attr.t).dtype
            attr.t.CopyFrom(numpy_helper.from_array(value.astype(dtype), attr.t.name))
