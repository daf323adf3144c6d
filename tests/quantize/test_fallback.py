"""The ncnn accuracy repair (edgekit.quantize.fallback): which layer goes back to float first."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ncnn")
from edgekit.backends.ncnn import pnnx_binary  # noqa: E402

if pnnx_binary() is None:
    pytest.skip("the pnnx converter is not installed", allow_module_level=True)

from edgekit.quantize import calibrate, ncnn_int8  # noqa: E402
from edgekit.quantize.fallback import quantize_within  # noqa: E402
from edgekit.quantize.ncnn_model import NcnnModel  # noqa: E402

from . import nets  # noqa: E402


def _drop(param, binf, qp, qb, feeds):
    f32, i8 = calibrate.fp32_net(param, binf), ncnn_int8.int8_net(qp, qb)
    try:
        return max(1 - calibrate._cos(calibrate.extract(f32, f, ["out0"])["out0"],
                                      calibrate.extract(i8, f, ["out0"])["out0"]) for f in feeds)
    finally:
        f32.clear()
        i8.clear()


def test_the_layer_most_harmful_alone_goes_back_to_float_first(tmp_path):
    """Harm is the output drop a layer causes when it alone is int8, measured on the ncnn runtime: with a budget
    that one float layer meets, the one kept float is the one worse alone. (Where that order differs from the
    layers' own int8 cosines, as on PP-OCRv4 det, is in fallback's docstring and test_rec_det_precisions.)"""
    param, binf = nets.to_ncnn(nets.conv_chain(), tmp_path / "fp32")
    rng = np.random.default_rng(0)
    samples = [{"x": rng.uniform(-1, 1, (1, 4, 16, 16)).astype(np.float32)} for _ in range(6)]
    feeds = ncnn_int8.feeds_for_ncnn(samples, {"x": "in0"}, True)
    names = [layer.name for layer in NcnnModel.read(param, binf).quantizable()]
    assert len(names) == 2
    alone = {}
    for name in names:  # each layer alone in int8, as the ranking measures it
        qp, qb = tmp_path / f"{name}.param", tmp_path / f"{name}.bin"
        ncnn_int8.quantize(param, binf, qp, qb, samples, {"x": "in0"}, method="best",
                           keep_float=set(names) - {name}, float_weights="fp16")
        alone[name] = _drop(param, binf, qp, qb, feeds)
    worse, better = sorted(names, key=alone.get, reverse=True)
    budget = alone[better] * 1.05
    fb = quantize_within(param, binf, tmp_path / "q.param", tmp_path / "q.bin", samples, {"x": "in0"}, ["out0"],
                         budget)
    assert fb.rounds[0]["drop"] > budget, (fb.rounds, alone)  # both int8 miss the budget: the ranking is used
    assert set(fb.why) == {worse} and fb.why[worse].startswith("round 1"), (fb.why, alone)
    assert [lr.name for lr in fb.report.quantized] == [better] and fb.drop <= budget
