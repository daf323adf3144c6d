"""Give onnx2tf an `Erf` that TFLite can run with builtin ops: a GELU in any of the usual spellings becomes the one
TensorFlow's converter fuses into TFLite's builtin GELU, and any other `Erf` becomes a rational approximation in
builtin arithmetic (Clip, Mul, Add, Div): erf(x) = x P(x^2) / Q(x^2) on x clipped to [-4, 4], the float erf of
Eigen and TensorFlow.

Why: onnx2tf lowers ONNX `Erf` to `tf.math.erf`, which TFLite has only as the select-TF op `FlexErf`; LiteRT's
interpreter cannot run it ("Select TensorFlow op(s) ... not supported"), so transformers (GELU), PP-OCRv6 and
anything else with an Erf fail on TFLite. Measured (onnx2tf 1.29.24, TF 2.19): torch.onnx's GELU
`Div(x, 1.4142135) -> Erf -> Add 1 -> Mul x -> Mul 0.5` gives FlexErf (onnx2tf's own GELU match compares the fp32
constant with the Python float 1.4142135, which never holds), and so does an Erf outside a GELU; the spelling
`Mul(x, 0.70710677) -> Erf -> Add 1`, `Mul(x, 0.5)`, product gives TFLite's builtin GELU (opcode 150),
erf-exact. onnx2tf's flag `-rtpo Erf` replaces every Erf by Abramowitz-Stegun 7.1.26
(sign(x) (1 - poly(t) exp(-x^2))); it also gives cosine 1.0 on these models, but it is a converter flag
(edgekit's TFLite backend does not pass it), it turns GELUs into ~20 ops instead of one, and in fp32 its
`1 - ...` cancels near 0 (max abs error 5.3e-7 at x ~ 0.04, a relative error of 1e-5 there).

Exactness: the GELU rewrite computes 0.5 x (1 + erf(x / sqrt 2)), the function every matched spelling
computes; they differ only in fp32 rounding (x * 0.70710677 vs x / 1.4142135, the order of the products).
The rational erf, measured in fp32 on ONNX Runtime against math.erf over [-6, 6] and down to 1e-30, is within
4.2e-7 absolute and 4.2e-7 relative everywhere (about 3.5 ulp; ORT's own Erf: 5.7e-8); beyond |x| = 4 erf
rounds to +-1 in fp32, which the clip gives. GELU's tanh form would be a different function (up to ~5e-4
away from erf-GELU), so it is not used. The rewritten ops run on every backend."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph_edit import GraphIndex, remove_dead

RSQRT2 = np.float32(0.70710677)  # 1 / sqrt 2 in fp32, as TensorFlow's GELU fusion expects
# erf(x) ~= x * P(x^2) / Q(x^2), |x| <= 4 (beyond, erf is +-1 in fp32): Eigen's generic_fast_erf_float
ALPHA = (-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04, -5.69250639462346e-05,
         -2.10102402082508e-06, 2.77068142495902e-08, -2.72614225801306e-10)  # x^1, x^3, ..., x^13 (times x)
BETA = (-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03, -2.13374055278905e-04,
        -1.45660718464996e-05)  # x^0, x^2, ..., x^8


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    g = model.graph
    erfs = [n for n in g.node if n.op_type == "Erf" and n.domain in ("", "ai.onnx")]
    if not erfs:
        return model, False
    ctx = _Ctx(g)
    for erf in erfs:
        if not _gelu(ctx, erf):
            _polynomial(ctx, erf)
    remove_dead(g)
    return model, True


class _Ctx(GraphIndex):
    def scalar(self, name):
        arr = None
        if name in self.inits:
            arr = numpy_helper.to_array(self.inits[name])
        elif name in self.producer and self.producer[name].op_type == "Constant":
            arr = numpy_helper.to_array(next(a.t for a in self.producer[name].attribute if a.name == "value"))
        return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None

    def only_user(self, name):
        users = self.uses.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    def fresh(self, base):
        self.n += 1
        return f"{base}_erf{self.n}"

    def const(self, base, value, like=np.float32):
        name = self.fresh(base)
        t = numpy_helper.from_array(np.asarray(value, like), name)
        self.g.initializer.append(t)
        self.inits[name] = t
        return name


def _other(node, name):
    """The other input of a binary node that has `name` as one input."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _gelu(ctx, erf) -> bool:
    """Match x / sqrt 2 or x * (1 / sqrt 2) -> Erf -> + 1 -> times x and 0.5 (either order, 0.5 on x or on the
    product, operands either way round) and write it in the form TensorFlow's converter fuses into GELU."""
    pre = ctx.producer.get(erf.input[0])
    if pre is None or ctx.only_user(erf.input[0]) is not erf or pre.op_type not in ("Mul", "Div"):
        return False
    x = None
    for cand in pre.input:
        k = ctx.scalar(_other(pre, cand) or "")
        if k is None:
            continue
        if (pre.op_type == "Div" and pre.input[0] == cand and abs(k - np.sqrt(2)) < 1e-6) or \
                (pre.op_type == "Mul" and abs(k - 1 / np.sqrt(2)) < 1e-6):
            x = cand
    if x is None:
        return False
    add = ctx.only_user(erf.output[0])
    if add is None or add.op_type != "Add" or ctx.scalar(_other(add, erf.output[0]) or "") != 1.0:
        return False
    m1 = ctx.only_user(add.output[0])
    if m1 is None or m1.op_type != "Mul":
        return False
    y = _other(m1, add.output[0])
    if y == x:  # (x * (1 + erf)) * 0.5
        m2 = ctx.only_user(m1.output[0])
        if m2 is None or m2.op_type != "Mul" or ctx.scalar(_other(m2, m1.output[0]) or "") != 0.5:
            return False
        last, other = m2, m1
    else:  # (0.5 * x) * (1 + erf), or (x * 0.5) * (1 + erf)
        hx = ctx.producer.get(y)
        if hx is None or hx.op_type != "Mul" or x not in hx.input or ctx.scalar(_other(hx, x) or "") != 0.5 \
                or ctx.only_user(y) is not m1:
            return False
        last, other = m1, hx
    base = erf.name or "gelu"
    s, e, a, h = (ctx.fresh(f"{base}_{t}") for t in ("scaled", "erf", "add", "half"))
    nodes = [helper.make_node("Mul", [x, ctx.const(f"{base}_rsqrt2", RSQRT2)], [s], name=f"{base}_gelu_scale"),
             helper.make_node("Erf", [s], [e], name=f"{base}_gelu_erf"),
             helper.make_node("Add", [e, ctx.const(f"{base}_one", 1.0)], [a], name=f"{base}_gelu_add"),
             helper.make_node("Mul", [x, ctx.const(f"{base}_halfc", 0.5)], [h], name=f"{base}_gelu_half"),
             helper.make_node("Mul", [h, a], [last.output[0]], name=f"{base}_gelu_mul")]
    idx = list(ctx.g.node).index(pre)  # x is ready there, and whatever reads the result comes later
    for old in (last, other, add, erf, pre):
        ctx.g.node.remove(old)
    for k, nd in enumerate(nodes):
        ctx.g.node.insert(idx + k, nd)
    ctx.refresh()
    return True


def _polynomial(ctx, erf) -> None:
    """erf(x) = x P(x^2) / Q(x^2) on x clipped to [-4, 4] (Eigen's / TensorFlow's float erf)."""
    x = erf.input[0]
    base = erf.name or "erf"
    c = lambda tag, v: ctx.const(f"{base}_{tag}", v)  # noqa: E731
    n = lambda tag: ctx.fresh(f"{base}_{tag}")  # noqa: E731
    xc, x2 = n("clip"), n("x2")
    nodes = [helper.make_node("Clip", [x, c("lo", -4.0), c("hi", 4.0)], [xc]),
             helper.make_node("Mul", [xc, xc], [x2])]

    def horner(coefs, tag):
        acc = c(f"{tag}{len(coefs) - 1}", coefs[-1])
        for k in range(len(coefs) - 2, -1, -1):
            m, s = n(f"{tag}_mul"), n(f"{tag}_add")
            nodes.extend([helper.make_node("Mul", [acc, x2], [m]),
                          helper.make_node("Add", [m, c(f"{tag}{k}", coefs[k])], [s])])
            acc = s
        return acc

    p, q = horner(ALPHA, "alpha"), horner(BETA, "beta")
    px = n("px")
    nodes += [helper.make_node("Mul", [xc, p], [px]), helper.make_node("Div", [px, q], [erf.output[0]])]
    for k, nd in enumerate(nodes):
        nd.name = f"{base}_rational{k}"
    idx = list(ctx.g.node).index(erf)
    ctx.g.node.remove(erf)
    for k, nd in enumerate(nodes):
        ctx.g.node.insert(idx + k, nd)
    ctx.refresh()


