"""A dynamically quantized source (DynamicQuantizeLinear, MatMulInteger, ConvInteger, DynamicQuantizeLSTM) is its
own reference: what it does to its activations is measured on the model itself, as the gap between it and its
float rewrite (dequantize-dynamic: the weights dequantized exactly) on ONNX Runtime, and export and `check` both
widen the fp32 tolerance by that gap through `allowance`, one rule for both, so that they judge such an artifact
alike."""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import EdgekitError
from ..onnx.passes import dequantize_dynamic
from ..runner import reference as reference_runner
from .compare import quantization_allowance

DYNAMIC_QUANT_OPS = ("DynamicQuantizeLinear", "DynamicQuantizeLSTM", "DynamicQuantizeMatMul", "MatMulInteger",
                     "ConvInteger")


def is_dynamically_quantized(model: onnx.ModelProto) -> bool:
    return any(n.op_type in DYNAMIC_QUANT_OPS for n in model.graph.node)


def allowance(tol: dict, refs: list[dict], rewrite: tuple, passes: list[str]) -> dict:
    """The verification tolerance of an artifact of a dynamically quantized source (`rewrite`: float_rewrite's
    result): `tol` widened by the source's own quantization gap, k = 1 when the artifact runs the float rewrite
    (its passes include dequantize-dynamic, which rewrote every quantized op), else 2 (it runs quantized ops
    with its own rounding; compare.quantization_allowance says why)."""
    floats, steps, complete = rewrite
    if floats is None:
        return tol
    return quantization_allowance(tol, refs, floats, 1 if complete and "dequantize-dynamic" in passes else 2, steps)


def float_rewrite(fixed: onnx.ModelProto, samples: list[dict]) -> tuple[list[dict] | None, dict, bool]:
    """ONNX Runtime on the source's float rewrite (dequantize-dynamic: weights dequantized exactly) for the
    verification samples, the largest activation step each DynamicQuantizeLinear takes on them (its y_scale,
    exposed as an extra output of the quantized source), and whether the rewrite left no quantized op.
    (None, {}, False) when the rewrite changes nothing or ONNX Runtime cannot run it."""
    copy = onnx.ModelProto()
    copy.CopyFrom(fixed)
    model, changed = dequantize_dynamic.run(copy)
    if not changed:
        return None, {}, False
    complete = not is_dynamically_quantized(model)
    try:
        runner = reference_runner(model)
        try:
            floats = [runner(f) for f in samples]
        finally:
            runner.close()
    except EdgekitError:
        return None, {}, False
    probe = onnx.ModelProto()
    probe.CopyFrom(fixed)
    scales = {n.output[1]: n.name or n.output[0] for n in probe.graph.node
              if n.op_type == "DynamicQuantizeLinear" and len(n.output) > 1}
    outputs = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [])
                              for name in scales if name not in outputs)
    steps: dict[str, float] = {}
    try:
        runner = reference_runner(probe)
        try:
            for f in samples:
                got = runner(f)
                for name, node in scales.items():
                    steps[node] = max(steps.get(node, 0.0), float(np.max(got[name])))
        finally:
            runner.close()
    except Exception:  # the steps only explain the allowance; the gap above is what sets it
        steps = {}
    return floats, steps, complete
