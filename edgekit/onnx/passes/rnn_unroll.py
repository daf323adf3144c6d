"""Unroll ONNX `LSTM` and `GRU` over their (static) time steps into MatMul, Add, Sigmoid, Tanh, Mul, Split and
Concat.

Why: MNN 3.6's converter lowers an ONNX LSTM to a `While` loop and crashes doing it (exit -11, after "Use While
to compute LSTM") for every LSTM without initial states, forward, reverse or bidirectional; with initial
states it converts, but the runtime cannot size the loop's outputs and returns 0x0x0x0 tensors. pnnx turns
an ONNX LSTM into ncnn's LSTM layer only in torch.onnx's exact surroundings (Y followed by Squeeze(1), or by
Transpose(0,2,1,3) + Reshape(0,0,-1), and exactly one or all three outputs used); anything else (a CRNN that
goes batch-first, a streaming model that reads Y_h and Y_c, and torch's own bidirectional form once onnxslim
has folded its size-1 Transposes and Reshape(0,0,-1) into one Reshape — the simplify pass does exactly that, so
a CRNN that loads from raw pnnx stops loading after normalisation) stays a raw `LSTM` line without parameters that
ncnn refuses ("layer load_param LSTM failed"); onnx2tf fails on the CRNN's bidirectional LSTM node. Measured on
tests/families.py's CRNN, unrolled: ncnn, MNN, TFLite and OpenVINO all match ONNX Runtime (cosine 1.0). Recurrent
models on the edge run short fixed windows (a text line's columns, a 32 ms audio chunk), so the unrolled graph is
small, and it uses only ops every converter maps.

Exact: each step computes the ONNX definition with the default activations — LSTM (gates i, o, f, c):
g = X_t W^T + H_{t-1} R^T + Wb + Rb; C_t = sigmoid(f) C_{t-1} + sigmoid(i) tanh(c); H_t = sigmoid(o) tanh(C_t);
GRU (gates z, r, h): z, r = sigmoid(X_t W^T + H R^T + b), h~ = tanh(X_t W_h^T + r (H R_h^T + Rb_h)) for
linear_before_reset=1 or tanh(X_t W_h^T + (r H) R_h^T + Rb_h) for 0, H_t = (1 - z) h~ + z H. The input
projection of all steps is one MatMul; a zero initial state skips its products (0 * R adds exact zeros). The
result matches ONNX Runtime to fp32 rounding (summation order). Peepholes, clip, input_forget, non-default
activations, sequence_lens and layout=1 are left alone (the node is kept)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    g = model.graph
    if next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0) < 13:
        return model, False  # Split / Squeeze / Unsqueeze take their axes as inputs from opset 13
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = [d.dim_value for d in t.shape.dim]
    inits = {i.name: i for i in g.initializer}
    changed = False
    for node in [n for n in g.node if n.op_type in ("LSTM", "GRU") and n.domain in ("", "ai.onnx")]:
        b = _Builder(g, inits, node)
        if b.unroll(shapes.get(node.input[0])):
            idx = list(g.node).index(node)
            g.node.remove(node)
            for k, n in enumerate(b.nodes):
                g.node.insert(idx + k, n)
            changed = True
    return model, changed


class _Builder:
    def __init__(self, g, inits, node):
        self.g, self.inits, self.node = g, inits, node
        self.nodes: list = []
        self.base = (node.name or node.op_type.lower()).replace("/", "_")
        self.k = 0

    def name(self, tag):
        self.k += 1
        return f"{self.base}_u{self.k}_{tag}"

    def const(self, tag, arr):
        n = self.name(tag)
        t = numpy_helper.from_array(np.asarray(arr), n)
        self.g.initializer.append(t)
        self.inits[n] = t
        return n

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs if n_out > 1 else outs[0]

    def get(self, name):
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def unroll(self, xshape) -> bool:
        node = self.node
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        lstm = node.op_type == "LSTM"
        if xshape is None or len(xshape) != 3 or attrs.get("layout", 0) != 0 or "clip" in attrs \
                or attrs.get("input_forget", 0) or "activations" in attrs and [
                    a.decode() if isinstance(a, bytes) else a for a in attrs["activations"]] != (
                    ["Sigmoid", "Tanh", "Tanh"] if lstm else ["Sigmoid", "Tanh"]) * (
                    2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1):
            return False
        ins = list(node.input) + [""] * 8
        if ins[4] or (lstm and ins[7]):  # sequence_lens, peepholes
            return False
        w, r = self.get(ins[1]), self.get(ins[2])
        bias = self.get(ins[3]) if ins[3] else None
        if w is None or r is None or (ins[3] and bias is None):
            return False
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        steps, batch, _ = xshape
        hidden = attrs["hidden_size"]
        gates = 4 if lstm else 3
        x = ins[0]
        ys, hs, cs = [], [], []
        for d, kind in enumerate(dirs):
            wd, rd = w[d].astype(np.float32), r[d].astype(np.float32)
            bd = bias[d].astype(np.float32) if bias is not None else np.zeros(2 * gates * hidden, np.float32)
            h0 = self.state(ins[5], d) if ins[5] else None
            c0 = self.state(ins[6], d) if lstm and ins[6] else None
            if lstm:
                proj = self.op("Add", [self.op("MatMul", [x, self.const("wT", wd.T.copy())]),
                                       self.const("b", bd[:4 * hidden] + bd[4 * hidden:])])
            else:  # GRU: Rb_h stays inside the reset product when linear_before_reset
                lbr = attrs.get("linear_before_reset", 0)
                wb = bd[:3 * hidden].copy()
                rb = bd[3 * hidden:].copy()
                fold = wb + np.concatenate([rb[:2 * hidden], np.zeros(hidden, np.float32)])
                proj = self.op("Add", [self.op("MatMul", [x, self.const("wT", wd.T.copy())]), self.const("b", fold)])
                rbh = self.const("rbh", rb[2 * hidden:])
            # one step-1 Slice per time step (a Split with T outputs trips ONNX Runtime 1.23's shape inference
            # once its `split` tensor reaches 128 bytes)
            ax0 = self.const("ax0", np.array([0], np.int64))
            xs = [self.op("Squeeze", [self.op("Slice", [proj, self.const("s", np.array([t], np.int64)),
                                                        self.const("e", np.array([t + 1], np.int64)), ax0]), ax0])
                  for t in range(steps)]  # [N, G*H]
            rT = self.const("rT", rd.T.copy())
            h, c = h0, c0
            outs = [None] * steps
            order = range(steps) if kind == "forward" else range(steps - 1, -1, -1)
            for t in order:
                if lstm:
                    pre = xs[t] if h is None else self.op("Add", [xs[t], self.op("MatMul", [h, rT])])
                    i, o, f, cc = self.op("Split", [pre, self.const("split4", np.full(4, hidden, np.int64))],
                                          n_out=4, axis=1)
                    ig, og, cg = self.op("Sigmoid", [i]), self.op("Sigmoid", [o]), self.op("Tanh", [cc])
                    new_c = self.op("Mul", [ig, cg])
                    if c is not None:
                        new_c = self.op("Add", [self.op("Mul", [self.op("Sigmoid", [f]), c]), new_c])
                    c = new_c
                    h = self.op("Mul", [og, self.op("Tanh", [c])])
                else:
                    xz, xr, xh = self.op("Split", [xs[t], self.const("split3", np.full(3, hidden, np.int64))],
                                         n_out=3, axis=1)
                    if h is None:
                        z, rr = self.op("Sigmoid", [xz]), self.op("Sigmoid", [xr])
                        # H = 0: r * (0 R_h + Rb_h) = r * Rb_h (linear_before_reset) or (r * 0) R_h + Rb_h = Rb_h
                        inner = self.op("Mul", [rr, rbh]) if lbr else rbh
                        hh = self.op("Tanh", [self.op("Add", [xh, inner])])
                        h = self.op("Sub", [hh, self.op("Mul", [z, hh])])  # (1 - z) h~ + z 0
                    else:
                        rz, rr_, rh = self.op("Split", [self.op("MatMul", [h, rT]),
                                                        self.const("split3", np.full(3, hidden, np.int64))],
                                              n_out=3, axis=1)
                        z = self.op("Sigmoid", [self.op("Add", [xz, rz])])
                        rr = self.op("Sigmoid", [self.op("Add", [xr, rr_])])
                        if lbr:
                            inner = self.op("Mul", [rr, self.op("Add", [rh, rbh])])
                        else:
                            rhT = self.const("rhT", rd[2 * hidden:].T.copy())
                            inner = self.op("Add", [self.op("MatMul", [self.op("Mul", [rr, h]), rhT]), rbh])
                        hh = self.op("Tanh", [self.op("Add", [xh, inner])])
                        # (1 - z) h~ + z H = h~ + z (H - h~)
                        h = self.op("Add", [hh, self.op("Mul", [z, self.op("Sub", [h, hh])])])
                outs[t] = h
            # Y for this direction: [T, 1, N, H]
            ax = self.const("ax01", np.array([0, 1], np.int64))
            ys.append(self.op("Concat", [self.op("Unsqueeze", [o, ax]) for o in outs], axis=0)
                      if steps > 1 else self.op("Unsqueeze", [outs[0], ax]))
            ax0 = self.const("ax0", np.array([0], np.int64))
            hs.append(self.op("Unsqueeze", [h, ax0]))
            if lstm:
                cs.append(self.op("Unsqueeze", [c if c is not None else h, ax0]))
        results = [ys, hs, cs]
        for k, out in enumerate(node.output[:3]):
            if not out:
                continue
            parts = results[k]
            self.nodes.append(helper.make_node("Concat", parts, [out], name=f"{self.base}_out{k}",
                                               axis=1 if k == 0 else 0) if len(parts) > 1 else
                              helper.make_node("Identity", parts, [out], name=f"{self.base}_out{k}"))
        del batch
        return True

    def state(self, name, d):
        """initial_h / initial_c [D, N, H] -> direction d's [N, H] (a zero constant state -> None)."""
        arr = self.get(name)
        if arr is not None and not arr[d].any():
            return None
        s = self.op("Slice", [name, self.const("s", np.array([d], np.int64)),
                              self.const("e", np.array([d + 1], np.int64)),
                              self.const("a", np.array([0], np.int64))])
        return self.op("Squeeze", [s, self.const("ax0", np.array([0], np.int64))])
