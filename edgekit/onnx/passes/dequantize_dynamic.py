"""Turn dynamically quantized layers back into float ones: `DynamicQuantizeLinear` + `MatMulInteger` /
`ConvInteger` + `Cast` + `Mul` (the scale chain) become one float `MatMul` / `Conv` on dequantized weights,
and `com.microsoft` `DynamicQuantizeLSTM` becomes an ONNX `LSTM` on dequantized weights.

Why: `onnxruntime.quantization.quantize_dynamic` (the usual way to shrink a speech or NLP model) writes these
ops, and the edge converters lack them: MNN's converter reports "does not support: ONNX::ConvInteger |
ONNX::DynamicQuantizeLSTM"; pnnx leaves DynamicQuantizeLinear / ConvInteger / MatMulInteger as raw layers ncnn
cannot create (and crashes, exit -11, when there is a DynamicQuantizeLSTM); onnx2tf fails at the first
ConvInteger. OpenVINO converts them, but its DynamicQuantizeLSTM result differs from ONNX Runtime's by more
than this rewrite does (max abs 0.012 vs 0.007 on tests/families.py's encoder).
Each of these backends has its own weight quantization (ncnn int8, MNN weight quant, TFLite int8), so the
deployable form is the float graph.

Exactness: the weights are dequantized exactly as ONNX Runtime does ((Wq - zp_w) * s_w, fp32), so the result
is the float model those weights define. It differs from the quantized source only by the activation's
dynamic quantization, which the source applies and the float graph does not: DynamicQuantizeLinear rounds x
to a step s_x = (max(x, 0) - min(x, 0)) / 255 (the range always covers x, so there is no saturation), an
error of at most s_x / 2 per element; MatMulInteger's integer sum is exact, so for each output
|y_quantized - y_float| <= s_x / 2 * sum_i |W_deq[i, j]| (for ConvInteger, the sum of |W_deq| over the
kernel's window of the output channel). The same holds per gate pre-activation inside DynamicQuantizeLSTM. A
chain that does not match the pattern is left alone."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph_edit import remove_dead


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    g = model.graph
    consts = _Consts(g)
    changed = False
    for node in list(g.node):
        if node.op_type in ("MatMulInteger", "ConvInteger") and node.domain in ("", "ai.onnx"):
            changed |= _integer_op(g, node, consts)
        elif node.op_type == "DynamicQuantizeLSTM" and node.domain == "com.microsoft":
            changed |= _lstm(g, node, consts)
    if changed:
        remove_dead(g)
        if not any(n.domain == "com.microsoft" for n in g.node):
            for op in [o for o in model.opset_import if o.domain == "com.microsoft"]:
                model.opset_import.remove(op)
    return model, changed


class _Consts:
    def __init__(self, g):
        self.g = g
        self.inits = {i.name: i for i in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}

    def get(self, name):
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant":
            return numpy_helper.to_array(next(a.t for a in n.attribute if a.name == "value"))
        return None

    def add(self, arr, name):
        while name in self.inits or name in self.producer:
            name += "_"
        t = numpy_helper.from_array(arr, name)
        self.g.initializer.append(t)
        self.inits[name] = t
        return name


def _consumers(g, name):
    return [n for n in g.node if name in n.input]


def _integer_op(g, node, consts) -> bool:
    """x -> DQL -> (xq, xs, xz); Mul(xs, ws) -> s; XInteger(xq, Wq, xz, wz) -> Cast(float) -> Mul(., s)."""
    xq, wq_name = node.input[0], node.input[1]
    xz = node.input[2] if len(node.input) > 2 else ""
    wz_name = node.input[3] if len(node.input) > 3 else ""
    dql = consts.producer.get(xq)
    wq = consts.get(wq_name)
    if dql is None or dql.op_type != "DynamicQuantizeLinear" or wq is None or xz != dql.output[2]:
        return False
    cast = _consumers(g, node.output[0])
    if len(cast) != 1 or cast[0].op_type != "Cast":
        return False
    cast = cast[0]
    mul = _consumers(g, cast.output[0])
    if len(mul) != 1 or mul[0].op_type != "Mul":
        return False
    mul = mul[0]
    scale = mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0]
    smul = consts.producer.get(scale)
    if smul is None or smul.op_type != "Mul" or dql.output[1] not in smul.input:
        return False
    ws = consts.get(smul.input[1] if smul.input[0] == dql.output[1] else smul.input[0])
    wz = consts.get(wz_name) if wz_name else np.zeros((), wq.dtype)
    if ws is None or wz is None:
        return False
    if node.op_type == "MatMulInteger":  # per-tensor or per-column (last axis) scales broadcast as they are
        w = (wq.astype(np.float32) - wz.astype(np.float32)) * ws.astype(np.float32)
        op = helper.make_node("MatMul", [dql.input[0], consts.add(w.astype(np.float32), f"{wq_name}_dequantized")],
                              [mul.output[0]], name=f"{node.name or 'matmul'}_float")
    else:  # ConvInteger: per-tensor or per-output-channel (axis 0)
        shape = (-1,) + (1,) * (wq.ndim - 1)
        w = (wq.astype(np.float32) - wz.astype(np.float32).reshape(shape if wz.ndim else ())) * \
            ws.astype(np.float32).reshape(shape if ws.ndim else ())
        op = helper.make_node("Conv", [dql.input[0], consts.add(w.astype(np.float32), f"{wq_name}_dequantized")],
                              [mul.output[0]], name=f"{node.name or 'conv'}_float")
        op.attribute.extend(node.attribute)
    idx = list(g.node).index(mul)
    g.node.insert(idx, op)
    g.node.remove(mul)
    g.node.remove(cast)
    g.node.remove(node)
    consts.producer = {o: n for n in g.node for o in n.output}
    return True


def _lstm(g, node, consts) -> bool:
    """DynamicQuantizeLSTM(X, W[D,I,4H] q, R[D,H,4H] q, B, seq_lens, h0, c0, P, W_scale, W_zp, R_scale, R_zp)
    -> LSTM(X, W[D,4H,I], R[D,4H,H], B, seq_lens, h0, c0, P)."""
    ins = list(node.input) + [""] * (12 - len(node.input))
    deq = []
    for q, s, z in ((ins[1], ins[8], ins[9]), (ins[2], ins[10], ins[11])):
        wq, ws, wz = consts.get(q), consts.get(s), consts.get(z)
        if wq is None or ws is None or wz is None:
            return False
        # scale / zero point: per direction [D] or per direction and output column [D, 4H]
        ws = ws.astype(np.float32).reshape(ws.shape[0], 1, -1)
        wz = wz.astype(np.float32).reshape(wz.shape[0], 1, -1)
        w = ((wq.astype(np.float32) - wz) * ws).transpose(0, 2, 1)
        deq.append(consts.add(np.ascontiguousarray(w, dtype=np.float32), f"{q}_dequantized"))
    lstm = helper.make_node("LSTM", [ins[0], deq[0], deq[1], *ins[3:8]], list(node.output),
                            name=f"{node.name or 'lstm'}_float")
    lstm.attribute.extend(node.attribute)
    while lstm.input and not lstm.input[-1]:
        del lstm.input[-1]
    idx = list(g.node).index(node)
    g.node.insert(idx, lstm)
    g.node.remove(node)
    consts.producer = {o: n for n in g.node for o in n.output}
    return True


