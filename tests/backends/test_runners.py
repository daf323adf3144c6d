"""Every backend's runner speaks ONNX semantics and runs at the precision it says (real converters/runtimes)."""
import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from tests.conftest import FORMATS


@pytest.fixture(scope="module")
def sample():
    return {"x": np.random.default_rng(1).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)}


@pytest.fixture(scope="module")
def reference(conv_model, sample):
    return edgekit.load(conv_model)(sample)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_verifies(conv_exports, fmt):
    r = conv_exports[fmt]
    assert r.ok, r.error
    v = r.manifest.verification
    assert v.passed and v.precision == "fp32"
    assert {o.name for o in v.outputs} == {"feat", "prob"}
    assert all(o.cosine >= 0.999 for o in v.outputs)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_transposed_view_feeds_like_its_copy(conv_exports, fmt, sample, reference):
    """preprocess.prepare(contiguous=False) hands an NCHW view of an NHWC buffer to runners that set
    strided_feeds (LiteRT takes the buffer as it is); every other runner gets it copied to C order."""
    runner = edgekit.load(conv_exports[fmt].path, threads=1)
    view = np.ascontiguousarray(sample["x"].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not view.flags.c_contiguous and np.array_equal(view, sample["x"])
    out = runner({"x": view})
    for name in out:
        np.testing.assert_allclose(out[name], reference[name], atol=1e-4, rtol=1e-3)
    runner.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_runner_speaks_onnx(conv_exports, fmt, sample, reference):
    runner = edgekit.load(conv_exports[fmt].path, threads=1)
    out = runner(sample)
    assert list(out) == ["feat", "prob"]
    for name in out:
        assert out[name].shape == reference[name].shape and out[name].dtype == reference[name].dtype
        np.testing.assert_allclose(out[name], reference[name], atol=1e-4, rtol=1e-3)
    runner.close()


def test_backend_conventions_are_recorded(conv_exports):
    ncnn = conv_exports["ncnn"].manifest
    assert [(s.backend_name, s.batch) for s in ncnn.inputs] == [("in0", "dropped")]
    assert [s.backend_name for s in ncnn.outputs] == ["out0", "out1"]
    tfl = conv_exports["tflite"].manifest
    assert tfl.inputs[0].layout == "NHWC"
    assert tfl.outputs[0].layout == "NHWC" and tfl.outputs[1].layout is None
    assert [s.backend_name for s in conv_exports["openvino"].manifest.outputs] == ["feat", "prob"]


def test_fp32_means_fp32(conv_exports):
    s = conv_exports["ncnn"].manifest.precision.settings
    assert not (s["use_fp16_storage"] or s["use_fp16_arithmetic"] or s["use_fp16_packed"] or s["use_bf16_storage"])
    assert conv_exports["mnn"].manifest.precision.settings["precision"] == "high"
    assert conv_exports["openvino"].manifest.precision.settings["INFERENCE_PRECISION_HINT"] == "f32"
    runner = edgekit.load(conv_exports["openvino"].path)
    assert runner.effective_precision == "fp32"  # not bf16, even on CPUs with AVX-512 bf16
    import xml.etree.ElementTree as ET

    xml = ET.parse(conv_exports["openvino"].path / "model.xml")
    types = {layer.find("data").get("element_type") for layer in xml.iter("layer") if layer.get("type") == "Const"}
    assert "f16" not in types  # weights not compressed to fp16
    for r in conv_exports.values():
        assert r.manifest.precision.weights == "fp32" and r.manifest.precision.compute == "fp32"


@pytest.mark.parametrize("feeds, message", [
    ({}, "missing: x"),
    ({"x": np.zeros((1, 3, 16, 16), np.float64)}, "dtype float64"),
    ({"x": np.zeros((1, 3, 8, 16), np.float32)}, "shape 1x3x8x16"),
    ({"x": np.zeros((1, 3, 16, 16), np.float32), "y": np.zeros(1)}, "do not match"),
])
@pytest.mark.parametrize("fmt", ["ncnn", "tflite"])
def test_wrong_inputs_are_refused(conv_exports, fmt, feeds, message):
    runner = edgekit.load(conv_exports[fmt].path)
    with pytest.raises(EdgekitError, match=message):
        runner(feeds)


def test_fp16_is_explicit_and_recorded(conv_model, tmp_path, sample, reference):
    results = edgekit.export(conv_model, target="ncnn,openvino", out=tmp_path, precision="fp16")
    for r in results:
        assert r.ok, r.error
        assert r.manifest.precision.requested == "fp16" and r.manifest.precision.weights == "fp16"
        assert r.manifest.verification.precision == "fp16"
        assert r.manifest.verification.tolerances["cos"] < 0.999  # looser, and said so
    assert results[0].manifest.precision.settings["use_fp16_storage"] is True
    # OpenVINO's CPU plugin turns an f16 hint into bf16 on CPUs with AVX-512 bf16: the manifest says so
    assert results[1].manifest.precision.compute in ("fp16", "bf16", "fp32")
    assert results[1].manifest.precision.compute == edgekit.load(results[1].path).effective_precision


def test_load_errors(tmp_path):
    with pytest.raises(EdgekitError, match="no such file"):
        edgekit.load(tmp_path / "nope")
    with pytest.raises(EdgekitError, match="neither an .onnx model nor an edgekit artifact"):
        edgekit.load(tmp_path)
    with pytest.raises(EdgekitError, match="positive"):
        edgekit.load(tmp_path, threads=0)


def test_a_device_needs_only_the_runtime(conv_exports, tmp_path):
    """Loading an artifact needs the runtime, not the converter (pnnx, onnx2tf, MNN's converter)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['pnnx'] = None; sys.modules['onnx2tf'] = None; sys.modules['_tools'] = None; "
            "import numpy as np, edgekit; x = np.zeros((1, 3, 16, 16), np.float32); "
            f"[edgekit.load(p)({{'x': x}}) for p in {[str(conv_exports[f].path) for f in ('ncnn', 'tflite', 'mnn')]}]; "
            "from edgekit.backends import get; assert not get('ncnn').available(convert=True); "
            "edgekit.export(sys.argv[1], target='ncnn', out=sys.argv[2])")
    proc = subprocess.run([sys.executable, "-c", code, str(conv_exports["ncnn"].manifest.source["path"]),
                           str(tmp_path)], capture_output=True, text=True)
    assert "BackendMissing" in proc.stderr and "pnnx" in proc.stderr and "converter" in proc.stderr


def test_vulkan_device_is_refused_clearly_without_a_gpu(conv_exports):
    import ncnn

    if ncnn.get_gpu_count() > 0:
        pytest.skip("this machine has a Vulkan GPU")
    with pytest.raises(EdgekitError, match="no Vulkan GPU"):
        edgekit.load(conv_exports["ncnn"].path, device="vulkan")
    with pytest.raises(EdgekitError, match="for ncnn artifacts"):
        edgekit.load(conv_exports["mnn"].path, device="vulkan")
