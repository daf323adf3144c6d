"""dequantize-dynamic: quantize_dynamic's DynamicQuantizeLinear + MatMulInteger / ConvInteger and com.microsoft
DynamicQuantizeLSTM, which MNN's converter and pnnx lack, back to float layers on the dequantized weights."""
import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import dequantize_dynamic
from tests import families
from tests.onnx.passes._helpers import export_one, ort_run

INTEGER_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM"}


def quantized_linear():
    """x[4,24] @ W[24,8], through quantize_dynamic (uint8 weights)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    w = np.random.default_rng(0).normal(0, 0.3, (24, 8)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "fc",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as d:
        onnx.save(model, f"{d}/f.onnx")
        quantize_dynamic(f"{d}/f.onnx", f"{d}/q.onnx", weight_type=QuantType.QUInt8)
        return onnx.load(f"{d}/q.onnx")


def test_matmul_differs_from_the_quantized_one_by_at_most_the_activation_step():
    x = np.random.default_rng(1).uniform(-2, 3, (4, 24)).astype(np.float32)
    q = quantized_linear()
    out, changed = dequantize_dynamic.run(quantized_linear())
    assert changed and [n.op_type for n in out.graph.node] == ["MatMul"]
    (w,) = [numpy_helper.to_array(i) for i in out.graph.initializer]
    step = (max(x.max(), 0) - min(x.min(), 0)) / 255  # DynamicQuantizeLinear's scale
    bound = step / 2 * np.abs(w).sum(axis=0)  # per output column
    diff = np.abs(ort_run(out, {"x": x})[0] - ort_run(q, {"x": x})[0])
    assert (diff <= bound * (1 + 1e-5) + 1e-6).all(), (diff.max(), bound.min())
    np.testing.assert_allclose(ort_run(out, {"x": x})[0], x @ w, rtol=1e-5, atol=1e-5)  # plain float MatMul


@pytest.mark.parametrize("lstm", [True, False])
def test_encoder_loses_every_integer_op_and_keeps_its_outputs(lstm):
    q = families.quantized_speech_encoder(lstm=lstm)
    ops = {n.op_type for n in q.graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"} <= ops
    assert ("DynamicQuantizeLSTM" in ops) == lstm
    out, changed = dequantize_dynamic.run(families.quantized_speech_encoder(lstm=lstm))
    assert changed
    assert not INTEGER_OPS & {n.op_type for n in out.graph.node}
    assert all(o.domain in ("", "ai.onnx") for o in out.opset_import)
    onnx.checker.check_model(out, full_check=True)
    float_model = families.float_speech_encoder(lstm=lstm)
    for seed in range(3):
        x = families.speech_encoder_inputs(seed)
        a, b, f = ort_run(q, x)[0], ort_run(out, x)[0], ort_run(float_model, x)[0]
        assert np.abs(a - b).max() < 0.02 * np.abs(a).max()  # activation quantization only
        assert np.abs(b - f).max() < 0.05 * np.abs(f).max()  # and the weights are the float ones, quantized
    assert not dequantize_dynamic.run(out)[1]


def test_mnn_and_pnnx_lack_the_integer_ops_and_convert_the_dequantized_model(tmp_path):
    for fmt, needle in (("mnn", "ConvInteger"), ("ncnn", "DynamicQuantizeLinear")):
        (tmp_path / fmt).mkdir()
        raw = export_one(families.quantized_speech_encoder(lstm=False), fmt, tmp_path / fmt, passes=[])
        assert not raw.ok and needle in raw.error, raw.error
        fixed = export_one(families.quantized_speech_encoder(lstm=False), fmt, tmp_path / fmt,
                           passes=["dequantize-dynamic"])
        assert fixed.ok, fixed.error
