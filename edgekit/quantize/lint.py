"""Pre-flight lint for fp16 and int8 exports: the known ways a model breaks at reduced precision, read from the
fp32 model's own activation statistics (ONNX Runtime with the intermediate tensors exposed, on the calibration
or verification samples) before any quantizer runs, so the user learns the cause, not only the measured drop.

- concat-range (int8): a Concat whose inputs' ranges differ by more than RANGE_RATIO x. Its output has one int8
  scale, so the small-range inputs (scores in 0..1 beside boxes in pixels) keep a few levels: the known cause of
  detectors collapsing to ~0 mAP after int8.
- fp16-overflow (fp16): an activation beyond fp16's largest finite value (65504) becomes inf.
- pad-maxpool (fp16, int8): a constant Pad with a non-zero value feeding a MaxPool (exporters write -inf or
  -3.4e38 so padding never wins the max): that value enters the int8 range of the Pad's output and overflows
  fp16; MaxPool's own `pads` do the same without a tensor holding it.

What edgekit does about each finding is advice, said in the finding: the export gate and the repair loop
measure the real damage (layers moved to float by measured harm, not from these findings), and an artifact
that fails its gate is refused with the measured drop."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RANGE_RATIO = 50.0
FP16_MAX = 65504.0
SAMPLES = 16  # statistics from the first samples at most: ranges settle quickly, and fp16 exposes every tensor


def _node_name(node: onnx.NodeProto, i: int) -> str:
    return node.name or f"{node.op_type}_{node.output[0] if node.output else i}"


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of the float32 tensors the graph computes (by ONNX shape inference)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model shape inference cannot read: no statistics, the static checks still run
        return set()
    infos = [*inferred.graph.value_info, *inferred.graph.output]
    return {v.name for v in infos if v.type.tensor_type.elem_type == TensorProto.FLOAT}


def ranges(model: onnx.ModelProto, samples: list[dict], tensors: set[str]) -> dict[str, tuple[float, float]]:
    """Tensor name -> (min, max) over the samples, on ONNX Runtime with those tensors made graph outputs."""
    import onnxruntime as ort

    if not tensors or not samples:
        return {}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in sorted(tensors - have))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph's tensors, not fused ones
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs() if o.name in tensors]
    found: dict[str, tuple[float, float]] = {}
    for s in samples:
        for name, v in zip(names, sess.run(names, s)):
            v = np.asarray(v, np.float64)
            if v.size == 0:
                continue
            finite = v[np.isfinite(v)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            if not np.isfinite(v).all():  # inf is the overflow itself
                lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            old = found.get(name, (lo, hi))
            found[name] = (min(old[0], lo), max(old[1], hi))
    return found


def _pad_value(node: onnx.NodeProto, consts: dict) -> float | None:
    """A constant-mode Pad's value (0 when it has none), None when it is another mode or not a constant."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        return None
    if "value" in attrs:  # opset < 11
        return float(attrs["value"])
    if len(node.input) > 2 and node.input[2]:
        v = consts.get(node.input[2])
        return None if v is None or v.size != 1 else float(v.ravel()[0])
    return 0.0


def lint(model: onnx.ModelProto, samples: list[dict], precision: str) -> list[dict]:
    """The findings for an export at `precision` ("fp16" or "int8"): each a dict of kind, node (the ONNX node),
    op, detail, action; `message(finding)` is its one line."""
    if precision not in ("fp16", "int8"):
        return []
    nodes = list(model.graph.node)
    names = [_node_name(n, i) for i, n in enumerate(nodes)]
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in nodes
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    computed = set()  # tensors made from constants only (Constant nodes, folded shape math): weights, not activations
    for n in nodes:
        if all(t in consts or t in computed or not t for t in n.input):
            computed.update(n.output)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    floats = _float_tensors(model) | {i.name for i in model.graph.input
                                      if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    findings = []

    for node, name in zip(nodes, names):
        if node.op_type != "Pad":
            continue
        value = _pad_value(node, consts)
        pools = [c for c in consumers.get(node.output[0], []) if c.op_type == "MaxPool"]
        if value and pools:
            findings.append({"kind": "pad-maxpool", "node": name, "op": "Pad",
                             "detail": f"constant pad value {value:g} feeds MaxPool "
                                       f"{_node_name(pools[0], nodes.index(pools[0]))}: it enters the int8 range "
                                       "of the padded tensor" + (" and overflows fp16" if abs(value) > FP16_MAX
                                                                 else ""),
                             "action": "advice: give MaxPool the padding (its `pads` pad with -inf "
                                       "internally) and drop the Pad; the export gate measures the damage"})

    concat_in = {t for n in nodes if n.op_type == "Concat" for t in n.input if t not in consts} & floats
    wanted = (concat_in if precision == "int8" else {t for n in nodes for t in n.output} & floats) - computed
    stats = ranges(model, samples[:SAMPLES], wanted - {i.name for i in model.graph.input}) if wanted else {}
    graph_in = {i.name for i in model.graph.input}
    if precision == "int8":
        for node, name in zip(nodes, names):
            if node.op_type != "Concat":
                continue
            spans = {t: max(abs(stats[t][0]), abs(stats[t][1])) for t in node.input if t in stats}
            spans = {t: s for t, s in spans.items() if s > 0}
            if len(spans) < 2:
                continue
            big, small = max(spans, key=spans.get), min(spans, key=spans.get)
            ratio = spans[big] / spans[small]
            if ratio > RANGE_RATIO:
                producers = [names[i] for i, n in enumerate(nodes) if small in n.output]
                findings.append({"kind": "concat-range", "node": name, "op": "Concat", "ratio": round(ratio, 1),
                                 "detail": f"inputs' ranges differ {ratio:.0f}x (|{big}| up to {spans[big]:.4g}, "
                                           f"|{small}| up to {spans[small]:.4g}): one int8 scale leaves the "
                                           "small one a few levels",
                                 "action": "advice: keep " + (producers[0] if producers else small) +
                                           " and this Concat float, or scale the inputs alike; the repair loop "
                                           "moves layers to float by measured harm, not from this finding"})
    else:
        flagged = {f["node"] for f in findings}  # a pad-maxpool Pad overflows by its pad value: said already
        for node, name in zip(nodes, names):
            if name in flagged:
                continue
            peak = max((max(abs(stats[t][0]), abs(stats[t][1])) for t in node.output if t in stats and
                        t not in graph_in), default=0.0)
            if peak > FP16_MAX:
                findings.append({"kind": "fp16-overflow", "node": name, "op": node.op_type, "peak": peak,
                                 "detail": f"activations reach {peak:.4g}, beyond fp16's {FP16_MAX:g}: inf at fp16",
                                 "action": "advice: export this model at fp32 (or rescale it); the fp16 gate "
                                           "refuses an artifact this breaks (ncnn's per-layer fp16 fallback, "
                                           "featmask 31=3, is not written by edgekit)"})
    return findings


def message(finding: dict) -> str:
    return f"{finding['kind']} at {finding['op']} {finding['node']}: {finding['detail']}; {finding['action']}"
