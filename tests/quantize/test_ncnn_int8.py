"""ncnn int8 models written by edgekit.quantize, run by the real ncnn runtime, against numpy and fp32."""
from __future__ import annotations

import filecmp

import numpy as np
import pytest

pytest.importorskip("ncnn")
from edgekit.backends.ncnn import pnnx_binary  # noqa: E402

if pnnx_binary() is None:
    pytest.skip("the pnnx converter is not installed", allow_module_level=True)

from edgekit.quantize import calibrate, ncnn_int8, reference  # noqa: E402
from edgekit.quantize.ncnn_model import TAG_INT8, NcnnModel  # noqa: E402
from edgekit.quantize.ncnn_rewrite import fold_affines  # noqa: E402

from . import nets  # noqa: E402

INPUTS = {"x": "in0"}


def _samples(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(n)]


def _run(net, x):
    return calibrate.extract(net, {"in0": x}, ["out0"])["out0"]


def _cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return a @ b / np.sqrt((a @ a) * (b @ b))


def _quantized(tmp_path, model, shape, **kw):
    param, binf = nets.to_ncnn(model, tmp_path / "fp32")
    samples = _samples(shape)
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS, **kw)
    return param, binf, qp, qb, report, [s["x"][0] for s in samples[4:]]


def _check_layer(param, binf, qp, qb, report, held, rtol=0.0, cos_min=0.999):
    """ncnn int8 output == numpy int8 arithmetic (to `rtol` of the accumulated term), and close to fp32."""
    model = NcnnModel.read(param, binf)
    (lr,) = report.quantized
    layer = model.layer(lr.name)
    net8 = ncnn_int8.int8_net(qp, qb)
    net32 = calibrate.fp32_net(param, binf)
    bias = NcnnModel.read(qp, qb).layer(lr.name).blob("bias").floats()  # as written (bias correction)
    for x in held:
        got, fp32 = _run(net8, x), _run(net32, x)
        want = reference.forward_int8(layer, x, layer.blob("weight").floats(), bias, np.array(lr.weight_scales),
                                      lr.bottom_scale)
        shape_b = bias.reshape(-1, *[1] * (want.ndim - 1)) if want.ndim > 1 else bias
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 + rtol * np.abs(want - shape_b).max())
        assert np.abs(got - fp32).max() > 1e-4  # the int8 path really ran (not the fp32 one)
        assert _cos(got, fp32) > cos_min


def test_roundtrip_is_byte_identical(tmp_path):
    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    NcnnModel.read(param, binf).write(tmp_path / "rt.param", tmp_path / "rt.bin")
    assert filecmp.cmp(param, tmp_path / "rt.param", shallow=False)
    assert filecmp.cmp(binf, tmp_path / "rt.bin", shallow=False)


def test_truncated_bin_is_refused(tmp_path):
    param, binf = nets.to_ncnn(nets.single_conv(), tmp_path / "fp32")
    cut = tmp_path / "cut.bin"
    cut.write_bytes(binf.read_bytes()[:-8])
    with pytest.raises(Exception, match="ends inside"):
        NcnnModel.read(param, cut)


def test_single_conv_matches_int8_arithmetic(tmp_path):
    # 1x1 stride-2 conv: the im2col gemm path, 8-bit weights
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.single_conv(k=1, stride=2), [1, 8, 16, 16])
    (lr,) = report.quantized
    assert lr.int8_scale_term == 2 and len(lr.weight_scales) == 16
    assert "8=2" in qp.read_text().splitlines()[-1]
    _check_layer(param, binf, qp, qb, report, held)


def test_conv3x3_uses_6bit_weights_and_matches(tmp_path):
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.single_conv(k=3), [1, 8, 16, 16])
    (lr,) = report.quantized
    w = NcnnModel.read(param, binf).layer(lr.name).blob("weight").floats().reshape(16, -1)
    np.testing.assert_allclose(lr.weight_scales, 31 / np.abs(w).max(1), rtol=1e-6)  # ncnn2table's 6-bit case
    _check_layer(param, binf, qp, qb, report, held, cos_min=0.995)


def test_depthwise_matches_int8_arithmetic(tmp_path):
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.depthwise_conv(), [1, 8, 16, 16])
    (lr,) = report.quantized
    assert lr.type == "ConvolutionDepthWise" and lr.int8_scale_term == 1 and len(lr.weight_scales) == 8
    w = NcnnModel.read(param, binf).layer(lr.name).blob("weight").floats().reshape(8, -1)
    np.testing.assert_allclose(lr.weight_scales, 127 / np.abs(w).max(1), rtol=1e-6)
    # x86 dequantizes depthwise with _mm_rcp_ps (convolutiondepthwise_x86.cpp:996), ~2^-12 relative error
    _check_layer(param, binf, qp, qb, report, held, rtol=5e-4)


def test_best_corrects_the_mean_error_int8_leaves_per_channel(tmp_path):
    """Bias correction (reference.bias_shift): on a skewed input (all >= 0, as after a ReLU) rounding a
    channel's few depthwise weights shifts its output mean; "best" calibration adds the measured shift to the
    bias, and ncnn computes with the corrected bias what the numpy arithmetic says."""
    param, binf = nets.to_ncnn(nets.depthwise_conv(), tmp_path / "fp32")
    rng = np.random.default_rng(4)
    samples = [{"x": rng.uniform(0, 1, [1, 8, 16, 16]).astype(np.float32)} for _ in range(8)]
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS, method="best")
    (lr,) = report.quantized
    assert lr.chosen.endswith("+bias") and lr.cosines[lr.chosen] == max(lr.cosines.values())
    held = [s["x"][0] for s in samples[4:]]
    _check_layer(param, binf, qp, qb, report, held, rtol=5e-4)
    layer = NcnnModel.read(param, binf).layer(lr.name)
    net8, net32 = ncnn_int8.int8_net(qp, qb), calibrate.fp32_net(param, binf)
    fixed, plain = [], []
    for x in held:
        fp32 = _run(net32, x)
        uncorrected = reference.forward_int8(layer, x, layer.blob("weight").floats(), layer.blob("bias").floats(),
                                             np.array(lr.weight_scales), lr.bottom_scale)
        fixed.append((_run(net8, x) - fp32).mean(axis=(1, 2)))
        plain.append((uncorrected - fp32).mean(axis=(1, 2)))
    fixed_err, plain_err = np.abs(np.mean(fixed, 0)).mean(), np.abs(np.mean(plain, 0)).mean()
    assert fixed_err < 0.5 * plain_err, (fixed_err, plain_err)


def test_innerproduct_matches_int8_arithmetic(tmp_path):
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.gemm(), [1, 64])
    (lr,) = report.quantized
    assert lr.type == "InnerProduct" and lr.int8_scale_term == 2 and len(lr.weight_scales) == 32
    _check_layer(param, binf, qp, qb, report, held)


def test_int8_weights_are_stored_tagged_and_small(tmp_path):
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.gemm(), [1, 64])
    layer = NcnnModel.read(qp, qb).quantizable()[0]
    weight = layer.blob("weight")
    assert weight.tag == TAG_INT8 and len(weight.raw) == 4 + 64 * 32
    assert [b.role for b in layer.blobs] == ["weight", "bias", "weight_scales", "bottom_scale"]
    np.testing.assert_allclose(layer.blob("bottom_scale").floats(), [report.quantized[0].bottom_scale], rtol=1e-6)
    assert report.size_ratio < 0.35


def test_keep_float_leaves_layer_untouched(tmp_path):
    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    src = NcnnModel.read(param, binf)
    first, last = (l.name for l in src.quantizable())
    samples = _samples([1, 4, 16, 16])
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS, keep_float={last})
    assert [l.name for l in report.quantized] == [first] and report.kept_float == [last]
    out = NcnnModel.read(qp, qb)
    kept = out.layer(last)
    assert kept.line == src.layer(last).line and [b.raw for b in kept.blobs] == [b.raw for b in src.layer(last).blobs]
    assert out.layer(first).get(8) == 2
    # reference: int8 first layer (numpy), then the float 1x1 conv (numpy, fp32)
    a = out.layer(first)
    sa = src.layer(first)
    lr = report.quantized[0]
    b = src.layer(last)
    wb = b.blob("weight").floats().reshape(b.get(0), -1)
    net8, net32 = ncnn_int8.int8_net(qp, qb), calibrate.fp32_net(param, binf)
    for s in samples[4:]:
        x = s["x"][0]
        h = reference.forward_int8(sa, x, sa.blob("weight").floats(), sa.blob("bias").floats(),
                                   np.array(lr.weight_scales), lr.bottom_scale)
        want = np.einsum("oc,chw->ohw", wb, h) + b.blob("bias").floats()[:, None, None]
        got = _run(net8, x)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
        assert _cos(got, _run(net32, x)) > 0.999
    assert a.blob("weight").tag == TAG_INT8


def test_unknown_keep_float_name_is_an_error(tmp_path):
    param, binf = nets.to_ncnn(nets.gemm(), tmp_path / "fp32")
    with pytest.raises(Exception, match="keep_float"):
        ncnn_int8.quantize(param, binf, tmp_path / "q.param", tmp_path / "q.bin", _samples([1, 64]), INPUTS,
                           keep_float={"nope"})


@pytest.mark.parametrize("method", ["aciq", "eq", "best"])
def test_other_methods_run_and_stay_close(tmp_path, method):
    param, binf, qp, qb, report, held = _quantized(tmp_path, nets.gemm(), [1, 64], method=method)
    assert report.method == method
    if method == "best":
        (lr,) = report.quantized
        assert lr.chosen.removesuffix("+bias") in ("kl", "aciq", "absmax")
        assert lr.cosines[lr.chosen] == max(lr.cosines.values())
    _check_layer(param, binf, qp, qb, report, held, cos_min=0.995)


def test_gemm_on_2d_blob_becomes_int8_innerproduct(tmp_path):
    param, binf = nets.to_ncnn(nets.matmul_2d(), tmp_path / "fp32")
    src = NcnnModel.read(param, binf)
    (gemm,) = [l for l in src.layers if l.type == "Gemm"]
    samples = _samples([1, 8, 16])
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS, innerproduct_to_conv=False)
    assert report.gemm_rewritten == [gemm.name]
    (lr,) = report.quantized
    layer = NcnnModel.read(qp, qb).layer(gemm.name)
    assert layer.type == "InnerProduct" and layer.get(8) == 2 and layer.blob("weight").tag == TAG_INT8
    w = gemm.blob("B").floats()  # [N, K]
    c = gemm.blob("C").floats()
    assert src.quantizable() == []  # only the rewrite made a quantizable layer
    net8, net32 = ncnn_int8.int8_net(qp, qb), calibrate.fp32_net(param, binf)
    ip = NcnnModel.read(qp, qb).layer(gemm.name)
    for s in samples[4:]:
        x = s["x"][0]
        want = reference.forward_int8(ip, x, w, c, np.array(lr.weight_scales), lr.bottom_scale)
        got = _run(net8, x).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert _cos(got, _run(net32, x)) > 0.999


def test_2d_innerproduct_becomes_int8_1x1_convolution_with_the_same_numbers(tmp_path):
    param, binf = nets.to_ncnn(nets.matmul_2d(), tmp_path / "fp32")
    (gemm,) = [l for l in NcnnModel.read(param, binf).layers if l.type == "Gemm"]
    samples = _samples([1, 8, 16])
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS)
    assert report.ip_as_conv == [gemm.name]
    q = NcnnModel.read(qp, qb)
    conv = q.layer(gemm.name)
    assert conv.type == "Convolution" and conv.get(8) == 2 and conv.get(1) == 1
    at = [l.name for l in q.layers].index(gemm.name)
    assert [l.type for l in q.layers[at - 2:at + 3]] == ["Permute", "Reshape", "Convolution", "Reshape", "Permute"]
    (lr,) = report.quantized
    ip_model = NcnnModel.read(param, binf)
    from edgekit.quantize.ncnn_rewrite import gemms_to_innerproducts
    gemms_to_innerproducts(ip_model)
    ip = ip_model.layer(gemm.name)  # the InnerProduct whose arithmetic the convolution must give
    net8, net32 = ncnn_int8.int8_net(qp, qb), calibrate.fp32_net(param, binf)
    for s in samples[4:]:
        x = s["x"][0]
        want = reference.forward_int8(ip, x, gemm.blob("B").floats(), gemm.blob("C").floats(),
                                      np.array(lr.weight_scales), lr.bottom_scale)
        got = _run(net8, x).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert _cos(got, _run(net32, x)) > 0.999


def test_gemm_rewrite_can_be_switched_off(tmp_path):
    param, binf = nets.to_ncnn(nets.matmul_2d(), tmp_path / "fp32")
    report = ncnn_int8.quantize(param, binf, tmp_path / "q.param", tmp_path / "q.bin", _samples([1, 8, 16]), INPUTS,
                                gemm_to_innerproduct=False)
    assert report.gemm_rewritten == [] and report.quantized == []


def test_float_layers_can_keep_fp16_weights(tmp_path):
    from edgekit.quantize.ncnn_model import TAG_FP16

    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    src = NcnnModel.read(param, binf)
    first, last = (l.name for l in src.quantizable())
    samples = _samples([1, 4, 16, 16])
    kw = dict(keep_float={last})
    a, b = tmp_path / "a", tmp_path / "b"
    ra = ncnn_int8.quantize(param, binf, a.with_suffix(".param"), a.with_suffix(".bin"), samples[:4], INPUTS, **kw)
    rb = ncnn_int8.quantize(param, binf, b.with_suffix(".param"), b.with_suffix(".bin"), samples[:4], INPUTS,
                            float_weights="fp16", **kw)
    kept = NcnnModel.read(b.with_suffix(".param"), b.with_suffix(".bin")).layer(last)
    assert kept.blob("weight").tag == TAG_FP16 and rb.int8_bytes < ra.int8_bytes
    na = ncnn_int8.int8_net(a.with_suffix(".param"), a.with_suffix(".bin"))
    nb = ncnn_int8.int8_net(b.with_suffix(".param"), b.with_suffix(".bin"))
    for s in samples[4:]:
        ya, yb = _run(na, s["x"][0]), _run(nb, s["x"][0])
        np.testing.assert_allclose(yb, ya, rtol=0, atol=2e-3 * np.abs(ya).max())
        assert np.abs(ya - yb).max() > 0  # the fp16-rounded weights were really used


def test_affines_and_activations_fold_into_convolutions(tmp_path):
    # PP-LCNetV3's x*a+b around each HardSwish: folded into the convolutions, same numbers, fewer layers
    param, binf = nets.to_ncnn(nets.affine_blocks(), tmp_path / "fp32")
    model = NcnnModel.read(param, binf)
    assert sum(l.type == "BinaryOp" for l in model.layers) == 8  # pnnx keeps them as scalar BinaryOps
    removed = fold_affines(model)
    model.write(tmp_path / "f.param", tmp_path / "f.bin")
    left = {l.type for l in model.layers}
    assert len(removed) == 10 and "BinaryOp" not in left and "HardSwish" not in left, (removed, left)
    dw2 = next(l for l in model.layers if l.type == "ConvolutionDepthWise" and l.get(18, 0.0) != 0)
    assert dw2.get(4) == 1  # the padded layer took the affine before it through pad_value
    a, b = calibrate.fp32_net(param, binf), calibrate.fp32_net(tmp_path / "f.param", tmp_path / "f.bin")
    for x in _samples([8, 16, 16], n=3):
        want, got = _run(a, x["x"]), _run(b, x["x"])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_padded_fold_can_be_switched_off_and_padded_layers_stay_float(tmp_path):
    param, binf = nets.to_ncnn(nets.affine_blocks(), tmp_path / "fp32")
    model = NcnnModel.read(param, binf)
    fold_affines(model, padded=False)
    assert all(l.get(18, 0.0) == 0 for l in model.layers)
    assert sum(l.type == "BinaryOp" for l in model.layers) == 2  # the affine before the padded dw2
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, _samples([1, 8, 16, 16], n=4), INPUTS)
    padded = [l.name for l in NcnnModel.read(qp, qb).layers if l.get(18, 0.0) != 0]
    assert padded and set(padded) <= set(report.kept_float)
    assert len(report.folded) == 10 and {lr.type for lr in report.quantized} == {"Convolution",
                                                                               "ConvolutionDepthWise"}
