"""Per-layer fp32/int8 timing: every int8 layer is timed alone on its real input."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ncnn")
from edgekit.backends.ncnn import pnnx_binary  # noqa: E402

if pnnx_binary() is None:
    pytest.skip("the pnnx converter is not installed", allow_module_level=True)

from edgekit.quantize import ncnn_int8, profile  # noqa: E402

from . import nets  # noqa: E402


def test_layer_speeds_cover_the_int8_layers(tmp_path):
    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    rng = np.random.default_rng(0)
    samples = [{"x": rng.uniform(-1, 1, (1, 4, 16, 16)).astype(np.float32)} for _ in range(3)]
    qp, qb = tmp_path / "q.param", tmp_path / "q.bin"
    report = ncnn_int8.quantize(param, binf, qp, qb, samples, {"x": "in0"})
    assert report.requantized  # the second layer's input arrives int8: it is timed on an int8 input
    speeds = profile.layer_speeds(param, binf, qp, qb, {"in0": samples[0]["x"][0]}, repeats=3)
    assert [s.name for s in speeds] == [l.name for l in report.quantized]
    assert all(s.fp32_ms > 0 and s.int8_ms > 0 for s in speeds)


def test_slower_in_int8_uses_the_margin():
    speeds = [profile.LayerSpeed("a", "Convolution", 1.0, 0.5), profile.LayerSpeed("b", "Convolution", 1.0, 0.97),
              profile.LayerSpeed("c", "ConvolutionDepthWise", 1.0, 2.0)]
    assert profile.slower_in_int8(speeds) == {"b", "c"}
    assert profile.slower_in_int8(speeds, min_speedup=1.0) == {"c"}
    tiny = speeds + [profile.LayerSpeed("d", "InnerProduct", 0.01, 0.02)]
    assert profile.slower_in_int8(tiny, min_share=0.01) == {"b", "c"}  # d: 0.3% of the time, below resolution


def test_fallback_speed_profile_keeps_its_verdicts_with_reasons(tmp_path):
    from edgekit.quantize.fallback import quantize_within

    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    rng = np.random.default_rng(0)
    samples = [{"x": rng.uniform(-1, 1, (1, 4, 16, 16)).astype(np.float32)} for _ in range(3)]
    fb = quantize_within(param, binf, tmp_path / "q.param", tmp_path / "q.bin", samples, {"x": "in0"}, ["out0"],
                         0.05, speed_profile=True)
    for name, why in fb.why.items():  # which layers the timing keeps float varies; each says why
        assert why.startswith(("slower in int8", "round", "depthwise")), why
