"""int8 for the `onnx` format, and the layer-sensitivity ranking the MNN and OpenVINO quantizers share: ONNX
Runtime's static QDQ quantization (`onnxruntime.quantization.quantize_static`).

The layers are the compute-heavy nodes (Conv, MatMul, Gemm with a constant weight), the ones every format's
int8 path quantizes; weights int8 per output channel, activations uint8 (ONNX Runtime's recommended U8S8 on
x86 CPUs), MinMax calibration over the calibration samples. A layer kept float goes in `nodes_to_exclude`.

Size (`compact`): ONNX Runtime's quantizer names every tensor and Q/DQ node it adds after its source
("<weight>_DequantizeLinear_Output"); on PP-OCR cls those names were a quarter of the file. The added tensors
are renamed to short ones and the Q/DQ nodes left unnamed (the tensors of the fp32 model keep theirs: the
ranking reads them); a kept-float layer's fp32 weight is stored fp16 with a Cast to fp32, which ONNX Runtime's
constant folding turns back into an fp32 initializer at load (fp32 compute, no Cast at run time; the gate
measures the rounding). What stays: int8 weights, one fp32 scale and one int32 bias per output channel, and the
graph itself, so a small model (cls: 0.5 MB of weights, 6300 channels) stays near 0.4x of fp32.

Sensitivity (`local_errors`): each layer's output error in the QDQ model (cosine to the fp32 model's same
tensor over the samples) minus the error already in its input, i.e. the error the layer itself adds. Because
MNN op names are the ONNX nodes' output names and OpenVINO's are the ONNX node names, the ranking made here
names layers that the other quantizers' skip lists take as they are."""
from __future__ import annotations

import logging
from pathlib import Path

import onnx

from ..errors import EdgekitError
from .repair import Attempt, Repaired, cosine, measure, within_budget

LAYER_OPS = ("Conv", "MatMul", "Gemm")


def named(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every node named (ONNX Runtime's exclusion list and OpenVINO's names go by node name)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{node.output[0] if node.output else i}"
        seen.add(node.name)
    return model


def prepared(model: onnx.ModelProto) -> onnx.ModelProto:
    """Named nodes, Constant nodes as initializers (the quantizer only quantizes initializer weights), and
    opset 13 at least (per-channel DequantizeLinear takes `axis` from opset 13 on)."""
    model = named(model)
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(node.attribute[0].t)
            t.name = node.output[0]
            model.graph.initializer.append(t)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        from onnx import version_converter

        model = version_converter.convert_version(model, 13)
    return model


def layers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The quantizable layers: Conv/MatMul/Gemm whose weight (input 1) is an initializer."""
    consts = {t.name for t in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return [n for n in model.graph.node if n.op_type in LAYER_OPS and len(n.input) > 1 and n.input[1] in consts]


class _Reader:
    """ONNX Runtime's CalibrationDataReader over our preprocessed samples (ONNX input name -> array)."""

    def __init__(self, samples: list[dict]):
        self._it = iter(samples)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # noqa: D102 - part of the reader protocol in newer ONNX Runtime releases
        pass


def quantize_qdq(src: Path, dst: Path, samples: list[dict], exclude: set[str]) -> list[str]:
    """Write the QDQ int8 model of `src` to `dst`; returns the names of the layers quantized."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    names = [n.name for n in layers(model)]
    todo = [n for n in names if n not in exclude]
    if not todo:
        onnx.save(model, str(dst))
        return []
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "run pre-processing first" advice, once per call
    try:
        quantize_static(str(src), str(dst), _Reader(samples), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(LAYER_OPS), nodes_to_quantize=todo, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    except Exception as e:  # ONNX Runtime's quantizer raising on a model: one line, not its traceback
        raise EdgekitError(f"ONNX Runtime's quantizer failed: {type(e).__name__}: {e}".splitlines()[0]) from None
    finally:
        logging.getLogger().setLevel(level)
    onnx.save(compact(onnx.load(str(dst)), model), str(dst))
    return todo


def compact(qdq: onnx.ModelProto, fp32: onnx.ModelProto) -> onnx.ModelProto:
    """The QDQ model with the quantizer's added tensors renamed short, its Q/DQ nodes unnamed, its value_info
    dropped, and the fp32 weights of the layers left float stored fp16 behind a Cast (see the docstring)."""
    import numpy as np
    from onnx import numpy_helper

    known = {i.name for i in fp32.graph.input} | {o.name for o in fp32.graph.output}
    for n in fp32.graph.node:
        known.update(n.input)
        known.update(n.output)
    short: dict[str, str] = {}
    made: set[str] = set()

    def rename(t: str) -> str:
        if not t or t in known or t in made:
            return t
        if t not in short:
            short[t] = f"_q{len(short)}"
            made.add(short[t])
        return short[t]

    g = qdq.graph
    inits = {t.name: t for t in g.initializer}
    casts = []
    graph_inputs = {i.name for i in g.input}  # an initializer listed as an input (IR < 4) stays as it is
    for n in g.node:
        if n.op_type in LAYER_OPS and len(n.input) > 1 and n.input[1] in inits and n.input[1] not in graph_inputs \
                and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT:
            w = numpy_helper.to_array(inits[n.input[1]])
            if w.size >= 1024 and np.abs(w).max() < 65504:  # big enough to matter, inside fp16's range
                half = numpy_helper.from_array(w.astype(np.float16), rename(n.input[1] + "/fp16"))
                g.initializer.append(half)
                out = rename(n.input[1] + "/fp32")
                casts.append(onnx.helper.make_node("Cast", [half.name], [out], to=onnx.TensorProto.FLOAT))
                n.input[1] = out
    for n in g.node:
        n.input[:] = [rename(t) for t in n.input]
        n.output[:] = [rename(t) for t in n.output]
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            n.name = ""
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if rename(t.name) in used]
    for t in keep:
        t.name = rename(t.name)
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.value_info[:]
    return qdq


def run_onnx(path: Path | bytes, samples: list[dict], outputs: list[str] | None = None) -> list[dict]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path if isinstance(path, bytes) else str(path), so,
                                providers=["CPUExecutionProvider"])
    names = outputs or [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(names, s))) for s in samples]


def _with_outputs(path: Path, tensors: list[str]) -> bytes:
    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    for t in tensors:
        if t not in have:
            model.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()


def local_errors(fp32: Path, qdq: Path, samples: list[dict]) -> dict[str, float]:
    """Layer name -> the error (1 - cosine) it adds: at its output minus at its input, QDQ vs fp32."""
    model = onnx.load(str(fp32), load_external_data=False)
    nodes = layers(model)
    if not nodes:
        return {}
    graph_inputs = {i.name for i in model.graph.input}
    tensors = sorted({n.output[0] for n in nodes} | {n.input[0] for n in nodes if n.input[0] not in graph_inputs})
    ref = run_onnx(_with_outputs(fp32, tensors), samples, tensors)
    got = run_onnx(_with_outputs(qdq, tensors), samples, tensors)

    def err(t: str) -> float:
        if t in graph_inputs:
            return 0.0
        return max(1 - cosine(r[t], g[t]) for r, g in zip(ref, got))

    return {n.name: err(n.output[0]) - err(n.input[0]) for n in nodes}


def ranking(fp32: Path, samples: list[dict], work: Path, exclude: set[str] = frozenset()) -> list[str]:
    """Layers most harmful first, measured on ONNX Runtime's QDQ model of `fp32` (the shared sensitivity proxy)."""
    src, qdq = work / "sensitivity.onnx", work / "sensitivity.qdq.onnx"
    onnx.save(prepared(onnx.load(str(fp32))), str(src))
    quantize_qdq(src, qdq, samples, set(exclude))
    errors = local_errors(src, qdq, samples)
    src.unlink(missing_ok=True)
    qdq.unlink(missing_ok=True)
    return sorted(errors, key=errors.get, reverse=True)


def quantize_within(src: Path, dst: Path, samples: list[dict], max_drop: float, work: Path,
                    accept=None) -> Repaired:
    """QDQ int8 of `src` at `dst`, layers moved back to float (the most harmful by `local_errors` first) until
    the drop against ONNX Runtime fp32 on `samples` is within `max_drop`."""
    named_src = work / "named.onnx"
    onnx.save(prepared(onnx.load(str(src))), str(named_src))
    reference = run_onnx(named_src, samples)

    def attempt(keep: set) -> Attempt:
        quantized = quantize_qdq(named_src, dst, samples, keep)
        drop, passed = measure(reference, run_onnx(dst, samples), accept)
        return Attempt(quantized, drop, quantized, passed)

    def rank(a: Attempt) -> list[str]:
        errors = local_errors(named_src, dst, samples)
        return sorted((n for n in errors if n in a.quantized), key=errors.get, reverse=True)

    return within_budget(attempt, rank, max_drop)


def layer_count(path: Path) -> int:
    return len(layers(onnx.load(str(path), load_external_data=False)))

