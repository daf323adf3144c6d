"""Bisect on a real divergence: PP-OCRv4 det exported to OpenVINO at fp16, which OpenVINO's CPU plugin runs in
bf16 on CPUs with AVX-512 bf16 (cosine ~0.97 on synthetic pages), kept with --keep-inaccurate."""
import math

import pytest

import edgekit
from edgekit.fixtures import OCR_MODELS
from edgekit.harness.bisect import candidates, rebuild_normalized
from edgekit.harness.check import source_model
from edgekit.manifest import Manifest


@pytest.fixture(scope="module")
def det_bf16(tmp_path_factory, text_images):
    fx = OCR_MODELS["ppocr-det"]
    out = tmp_path_factory.mktemp("det_bf16")
    (r,) = edgekit.export(fx.path, target="openvino", out=out, input_shapes=[fx.input_shape], precision="fp16",
                          data=[str(p) for p in text_images["text-page"]], preprocessing=fx.preprocessing,
                          keep_inaccurate=True)
    if r.manifest.precision.compute == "fp32":
        pytest.skip("OpenVINO runs the f16 hint in fp32 on this CPU: no divergence to bisect")
    report = edgekit.check([r.path], samples=2)
    if report.artifacts[0].passed:
        (out,) = report.artifacts[0].outputs
        pytest.skip(f"OpenVINO's {r.manifest.precision.compute} on this CPU is within the fp16 tolerance "
                    f"(cosine {out.cosine:.6f}): no divergence to bisect")
    return r


def test_fp16_artifact_shows_its_real_error(det_bf16):
    report = edgekit.check([det_bf16.path], samples=2)
    (out,) = report.artifacts[0].outputs
    assert report.artifacts[0].precision["compute"] in ("bf16", "fp16")
    assert out.cosine < 0.999 and out.max_abs > 1e-2  # far from fp32's 1e-4


def test_bisect_finds_a_node_in_log_conversions(det_bf16):
    # the same two samples as above: bisect runs on the worst one, which the fixture saw fail
    report = edgekit.check([det_bf16.path], samples=2, bisect=True)
    b = report.artifacts[0].bisect
    assert b is not None, "check passed: bisect did not run"
    if b["node"] is None:
        pytest.skip("the prefix up to the output reproduces ONNX Runtime on this CPU: no single node diverges")
    manifest = Manifest.load(det_bf16.path)
    n = len(candidates(rebuild_normalized(manifest, source_model(manifest, None)), b["output"]))
    assert b["candidates"] == n and n > 300
    assert b["conversions"] <= math.ceil(math.log2(n)) + 1
    assert b["node"] is not None and b["node"]["op"]
    steps = {s["node"]: s for s in b["steps"]}
    assert steps[b["node"]["name"]]["diverged"] and not steps[b["last_good"]]["diverged"]
