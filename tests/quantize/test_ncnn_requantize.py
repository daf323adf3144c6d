"""Requantize fusion (int8 between convolutions), run by the real ncnn runtime, against the numpy arithmetic of
the requantized chain and the param/bin layout ncnn's loader reads."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ncnn")
from edgekit.backends.ncnn import pnnx_binary  # noqa: E402

if pnnx_binary() is None:
    pytest.skip("the pnnx converter is not installed", allow_module_level=True)

from edgekit.quantize import calibrate, ncnn_int8, ncnn_requantize, reference  # noqa: E402
from edgekit.quantize.ncnn_model import NcnnModel  # noqa: E402
from edgekit.quantize.ncnn_rewrite import fold_affines  # noqa: E402

from . import nets  # noqa: E402

INPUTS = {"x": "in0"}
SHAPE = [1, 8, 12, 12]


def _samples(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(n)]


def _quantized(tmp_path, onnx_model, shape=SHAPE, **kw):
    param, binf = nets.to_ncnn(onnx_model, tmp_path / "fp32")
    samples = _samples(shape)
    qp, qb = tmp_path / "int8.param", tmp_path / "int8.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples[:4], INPUTS, **kw)
    src = NcnnModel.read(param, binf)
    fold_affines(src)  # the fp32 layers the int8 ones were made from (activations folded in)
    return src, NcnnModel.read(qp, qb), qp, qb, report, [s["x"][0] for s in samples[4:]]


def _by_type(model, t):
    return [layer for layer in model.layers if layer.type == t]


def _reference(src, q, name, x, int8_input=False):
    """The numpy arithmetic of layer `name` of the int8 model `q` (its scales, its fp32 weights from `src`)."""
    lf, lq = src.layer(name), q.layer(name)
    top = lq.blob("top_scale")
    bias = lq.blob("bias").floats() if lq.blob("bias") is not None else None  # as written (bias correction)
    return reference.forward_int8(lf, x, lf.blob("weight").floats(), bias, lq.blob("weight_scales").floats(),
                                  float(lq.blob("bottom_scale").floats()[0]),
                                  None if top is None else float(top.floats()[0]), int8_input)


def _layer_by_bottom(model, blob):
    return next(layer for layer in model.layers if blob in layer.bottoms)


def _check_chain(src, q, qp, qb, held, names):
    """Run the int8 model; every layer of `names` (in order, each feeding the next) must give the numpy
    requantized chain: int8 blobs in between (extract gives their raw int8 values), fp32 at the end."""
    net = ncnn_int8.int8_net(qp, qb)
    blobs = [q.layer(n).tops[0] for n in names]
    try:
        for x in held:
            got = calibrate.extract(net, {"in0": x}, blobs)
            cur, is_int8 = x, False
            for n, blob in zip(names, blobs):
                want = _reference(src, q, n, cur, is_int8)
                fused = q.layer(n).get(8, 0) > 100
                if fused:  # int8 values; x86 depthwise's approximate reciprocal may move one by 1
                    diff = np.abs(got[blob] - want.astype(np.float32))
                    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, n
                    cur = got[blob].astype(np.int8)  # continue from ncnn's own int8 blob
                else:
                    np.testing.assert_allclose(got[blob], want, rtol=0, atol=2e-3 * np.abs(want).max() + 1e-5)
                    cur = got[blob]
                is_int8 = fused
    finally:
        net.clear()


def test_two_convs_in_a_row_pass_int8_between(tmp_path):
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_pair())
    a, b = _by_type(q, "Convolution")
    assert report.requantized == [a.name]
    assert a.get(8) == 102 and b.get(8) == 2  # the model's output stays fp32
    # load order (convolution.cpp load_model): weight, bias, weight scales, bottom scale, top scale
    assert [x.role for x in a.blobs] == ["weight", "bias", "weight_scales", "bottom_scale", "top_scale"]
    assert a.blob("top_scale").floats()[0] == b.blob("bottom_scale").floats()[0]
    raw = (tmp_path / "int8.bin").read_bytes()
    a_end = sum(len(x.raw) for x in a.blobs)  # conv_a is the first layer with weights
    assert raw[a_end - 4:a_end] == np.float32(b.blob("bottom_scale").floats()[0]).tobytes()
    _check_chain(src, q, qp, qb, held, [a.name, b.name])


def test_conv_relu_conv_requantizes_through_the_folded_relu(tmp_path):
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_chain(), shape=[1, 4, 16, 16])
    a, b = _by_type(q, "Convolution")
    assert a.get(9) == 1 and a.get(8) == 102 and report.requantized == [a.name]
    _check_chain(src, q, qp, qb, held, [a.name, b.name])
    x = held[0]
    net = ncnn_int8.int8_net(qp, qb)
    try:
        mid = calibrate.extract(net, {"in0": x}, [a.tops[0]])[a.tops[0]]
    finally:
        net.clear()
    assert mid.min() >= 0 and np.all(mid == np.round(mid))  # relu applied before requantizing, int8 values


def test_depthwise_reads_and_writes_int8(tmp_path):
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_dw_conv())
    (dw,) = _by_type(q, "ConvolutionDepthWise")
    a, b = _by_type(q, "Convolution")
    assert dw.get(8) == 101 and a.get(8) == 102 and sorted(report.requantized) == sorted([a.name, dw.name])
    assert [x.role for x in dw.blobs][-1] == "top_scale"
    _check_chain(src, q, qp, qb, held, [a.name, dw.name, b.name])


def test_blob_with_two_int8_consumers_is_fused_once_scales_agree(tmp_path):
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_fork())
    (split,) = _by_type(q, "Split")
    a = q.layer(_layer_by_bottom(q, "in0").name)
    b, c = (_layer_by_bottom(q, t) for t in split.tops)
    assert b.blob("bottom_scale").floats()[0] == c.blob("bottom_scale").floats()[0]  # same data, same scale
    assert report.requantized == [a.name] and a.get(8) == 102
    _check_chain(src, q, qp, qb, held, [a.name, b.name])
    _check_chain(src, q, qp, qb, held, [a.name, c.name])


def test_no_fusion_when_a_consumer_stays_float_or_scales_differ(tmp_path):
    fp32 = nets.to_ncnn(nets.conv_fork(), tmp_path / "probe")
    model = NcnnModel.read(*fp32)
    (split,) = _by_type(model, "Split")
    c = _layer_by_bottom(model, split.tops[1])
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_fork(), keep_float={c.name})
    assert report.requantized == [] and all(layer.get(8, 0) < 100 for layer in q.layers)
    # two int8 consumers that read one blob with different scales: the producer must keep writing fp32
    src, q, qp, qb, report, held = _quantized(tmp_path / "b", nets.conv_fork(), requantize=False)
    b, c = (_layer_by_bottom(q, t) for t in _by_type(q, "Split")[0].tops)
    c.blobs[-1] = type(c.blobs[-1])("bottom_scale", 1, False, np.float32([c.blob("bottom_scale").floats()[0] * 2])
                                    .tobytes())
    assert ncnn_requantize.fuse(q) == []
    b.blobs[-1] = type(b.blobs[-1])("bottom_scale", 1, False, c.blobs[-1].raw)
    assert len(ncnn_requantize.fuse(q)) == 1 and ncnn_requantize.fuse(q) == []  # idempotent


def test_requantize_can_be_switched_off(tmp_path):
    src, q, qp, qb, report, held = _quantized(tmp_path, nets.conv_pair(), requantize=False)
    assert report.requantized == [] and all(layer.get(8, 0) in (0, 2) for layer in q.layers)


def test_ppocr_det_fused_loads_and_stays_close_to_fp32(tmp_path):
    from edgekit import export
    from edgekit.fixtures import OCR_MODELS, write_text_images
    from edgekit.harness.inputs import load_samples
    from edgekit.manifest import Manifest

    fx = OCR_MODELS["ppocr-det"]
    images = write_text_images(tmp_path / "img", fx.kind, 5)
    res = export(fx.path, target="ncnn", out=tmp_path / "det", input_shapes=[fx.input_shape], data=images[:1],
                 preprocessing=fx.preprocessing, force=True)[0]
    assert res.ok, res.error
    man = Manifest.load(res.path)
    param, binf = man.file(res.path, "param"), man.file(res.path, "bin")
    names = {s.name: s.backend_name for s in man.inputs}
    out = man.outputs[0].backend_name
    samples = load_samples(images, man.inputs, fx.preprocessing)
    model = NcnnModel.read(param, binf)
    dw = {layer.name for layer in model.quantizable() if layer.type == "ConvolutionDepthWise"}
    feeds = ncnn_int8.feeds_for_ncnn(samples[3:], names, True)
    n32 = calibrate.fp32_net(param, binf)
    ref = [calibrate.extract(n32, f, [out])[out] for f in feeds]
    n32.clear()
    cos = {}
    for fuse in (False, True):
        qp, qb = tmp_path / f"int8{fuse}.param", tmp_path / f"int8{fuse}.bin"
        report = ncnn_int8.quantize(param, binf, qp, qb, samples[:3], names, keep_float=dw, float_weights="fp16",
                                    requantize=fuse)
        assert (len(report.requantized) >= 3) if fuse else not report.requantized
        n8 = ncnn_int8.int8_net(qp, qb)
        try:
            cos[fuse] = min(_cos(r, calibrate.extract(n8, f, [out])[out]) for r, f in zip(ref, feeds))
        finally:
            n8.clear()
    assert cos[True] > 0.97 and abs(cos[True] - cos[False]) < 0.01, cos  # int8 between layers costs ~nothing


def _cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))
