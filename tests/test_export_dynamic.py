"""`export --dynamic`: formats that can keep dynamic axes keep them and verify at two shapes; TFLite says it
cannot and suggests --input-shape. Real converters on a small conv net, plus PP-OCRv4 rec (dynamic width)."""

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from tests.models import conv_net, save

DYNAMIC_FORMATS = ["onnx", "ncnn", "mnn", "openvino"]


@pytest.fixture(scope="module")
def dynamic_exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dynamic")
    model = save(conv_net(h="H", w="W"), folder / "conv_hw.onnx")
    results = edgekit.export(model, target=",".join(DYNAMIC_FORMATS + ["tflite"]), out=folder / "out",
                             input_shapes=["x:1x3x128x64"], dynamic=True)
    return model, {r.format: r for r in results}


@pytest.mark.parametrize("fmt", DYNAMIC_FORMATS)
def test_dynamic_axes_are_kept_and_verified_at_two_shapes(dynamic_exports, fmt):
    model, results = dynamic_exports
    r = results[fmt]
    assert r.ok, r.error
    assert r.manifest.export_options["dynamic"] is True
    assert [isinstance(d, int) for d in r.manifest.inputs[0].shape] == [True, True, False, False]
    shapes = {tuple(s[0]) for s in r.manifest.verification.shapes}
    assert shapes == {(1, 3, 128, 64), (1, 3, 160, 96)}
    # and the artifact runs at a third size it was never verified at, matching ONNX Runtime
    x = {"x": np.random.default_rng(0).uniform(-1, 1, (1, 3, 24, 56)).astype(np.float32)}
    ref = edgekit.load(model)(x)
    out = edgekit.load(r.path)(x)
    assert out["feat"].shape == (1, 4, 24, 56)
    np.testing.assert_allclose(out["feat"], ref["feat"], atol=1e-4)


def test_tflite_cannot_keep_dynamic_axes_and_says_what_to_do(dynamic_exports):
    r = dynamic_exports[1]["tflite"]
    assert not r.ok and r.path is None
    assert "cannot keep dynamic axes" in r.error and "--input-shape x:1x3x128x64" in r.error


def test_dynamic_needs_a_typical_size_and_a_dynamic_axis(tmp_path):
    model = save(conv_net(h="H", w="W"), tmp_path / "hw.onnx")
    with pytest.raises(EdgekitError, match="--input-shape x:1x3xNxN"):
        edgekit.export(model, target="onnx", out=tmp_path, dynamic=True)
    static = save(conv_net(), tmp_path / "static.onnx")
    with pytest.raises(EdgekitError, match="no dynamic axes"):
        edgekit.export(static, target="onnx", out=tmp_path, dynamic=True)


def test_ppocr_rec_keeps_its_dynamic_width_on_ncnn(tmp_path):
    from edgekit.fixtures import OCR_MODELS, write_text_images

    fx = OCR_MODELS["ppocr-rec"]
    (r,) = edgekit.export(fx.path, target="ncnn", out=tmp_path, input_shapes=[fx.input_shape], dynamic=True,
                          data=write_text_images(tmp_path / "img", fx.kind, 2), preprocessing=fx.preprocessing)
    assert r.ok, r.error
    assert {tuple(s[0]) for s in r.manifest.verification.shapes} == {(1, 3, 48, 320), (1, 3, 48, 480)}
    assert min(o.cosine for o in r.manifest.verification.outputs) >= 0.999
