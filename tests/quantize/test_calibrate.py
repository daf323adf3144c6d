"""Calibration maths against a literal port of ncnn2table.cpp and against known distributions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.quantize import calibrate


def ncnn2table_kl_bin(histogram) -> int:
    """QuantNet::quantize_KL's threshold loop, line by line (ncnn tools/quantize/ncnn2table.cpp), fp32 like C++."""
    f = np.float32
    hist = np.asarray(histogram, np.float64)
    hn = (hist / hist.sum()).astype(np.float32)
    nbins, target = 2048, 128
    best_t, best = target, math.inf
    for t in range(target, nbins):
        eps = f(0.0001)
        clip = np.full(t, eps, np.float32)
        clip[:t] += hn[:t]
        clip[t - 1] += np.float32(hn[t:].sum(dtype=np.float32))
        npb = f(t) / f(target)
        q = np.zeros(target, np.float32)
        end = npb
        rl = int(math.floor(end))
        rs = f(end - rl)
        if rs > 0:
            q[0] += rs * hn[rl]
        q[0] += hn[:rl].sum(dtype=np.float32)
        q[0] /= rl + rs
        for j in range(1, target - 1):
            start, end = f(j) * npb, f(j + 1) * npb
            lu = int(math.ceil(start))
            ls = f(lu - start)
            rl = int(math.floor(end))
            rs = f(end - rl)
            if ls > 0:
                q[j] += ls * hn[lu - 1]
            if rs > 0:
                q[j] += rs * hn[rl]
            q[j] += hn[lu:rl].sum(dtype=np.float32)
            q[j] /= rl - lu + ls + rs
        start = f(t) - npb
        lu = int(math.ceil(start))
        ls = f(lu - start)
        if ls > 0:
            q[-1] += ls * hn[lu - 1]
        q[-1] += hn[lu:t].sum(dtype=np.float32)
        q[-1] /= t - lu + ls
        ex = np.full(t, eps, np.float32)
        end = npb
        rl = int(math.floor(end))
        rs = f(end - rl)
        if rs > 0:
            ex[rl] += rs * q[0]
        ex[:rl] += q[0]
        for j in range(1, target - 1):
            start, end = f(j) * npb, f(j + 1) * npb
            lu = int(math.ceil(start))
            ls = f(lu - start)
            rl = int(math.floor(end))
            rs = f(end - rl)
            if ls > 0:
                ex[lu - 1] += ls * q[j]
            if rs > 0:
                ex[rl] += rs * q[j]
            ex[lu:rl] += q[j]
        start = f(t) - npb
        lu = int(math.ceil(start))
        ls = f(lu - start)
        if ls > 0:
            ex[lu - 1] += ls * q[-1]
        ex[lu:t] += q[-1]
        kl = float(np.sum(clip.astype(np.float64) * np.log(clip.astype(np.float64) / ex.astype(np.float64))))
        if kl < best:
            best, best_t = kl, t
    return best_t


def _stats(values):
    st = calibrate.BlobStats(absmax=float(np.abs(values).max()), total=values.size)
    st.histogram = calibrate.histogram_of(values, st.absmax)
    return st


@pytest.mark.parametrize("dist", ["laplace", "gauss_outlier"])
def test_kl_matches_literal_ncnn2table_port(dist):
    rng = np.random.default_rng(0)
    v = rng.laplace(0, 1, 200_000) if dist == "laplace" else np.append(rng.normal(0, 1, 200_000), [40.0, -35.0])
    st = _stats(v.astype(np.float32))
    mine, theirs = calibrate.kl_threshold_bin(st.histogram), ncnn2table_kl_bin(st.histogram)
    assert abs(mine - theirs) <= 2, (mine, theirs)  # fp32 vs fp64 sums may move a near-tie by a bin
    assert mine < 1900  # heavy tails: KL clips below the max


def test_kl_uniform_keeps_threshold_near_max():
    v = np.random.default_rng(1).uniform(-3, 3, 300_000).astype(np.float32)
    st = _stats(v)
    t = calibrate.kl_threshold_bin(st.histogram)
    assert t >= 1900 and t == ncnn2table_kl_bin(st.histogram)
    assert calibrate.kl_scale(st) == pytest.approx(127 / ((t + 0.5) * st.absmax / 2048))
    assert 127 / calibrate.kl_scale(st) > 0.93 * st.absmax


def test_histogram_skips_zeros_and_clamps_the_max():
    h = calibrate.histogram_of(np.array([0, 0, 1.0, -1.0, 0.5], np.float32), 1.0)
    assert h.sum() == 3 and h[2047] == 2 and h[1024] == 1


def test_aciq_is_the_gaussian_clip():
    absmax, n = 4.0, 10_000
    c = 0.5 * 0.35 * (1 + math.sqrt(math.pi * math.log(4)))
    want = 3.92403714 * absmax * 2 * c / math.sqrt(2 * math.log(n))  # alpha for 8 bits
    assert calibrate.aciq_clip(absmax, n) == pytest.approx(want)
    st = calibrate.BlobStats(absmax=absmax, total=n)
    assert calibrate.aciq_scale(st) == pytest.approx(127 / want)
    # a Gaussian's ACIQ clip sits a few sigmas out, below the absmax of many samples
    v = np.random.default_rng(2).normal(0, 1, n)
    clip = calibrate.aciq_clip(float(np.abs(v).max()), n)
    assert 2.0 < clip < float(np.abs(v).max())


class _Layer:
    """A stand-in ncnn layer for the scale functions: params + one fp32 weight blob."""

    def __init__(self, type_, params, weight, bias=None):
        from edgekit.quantize.ncnn_model import Layer, fp32_blob

        self._l = Layer(type_, "l", ["a"], ["b"], {k: str(v) for k, v in params.items()}, "")
        self._l.blobs = [fp32_blob("weight", weight, True)] + (
            [fp32_blob("bias", bias, False)] if bias is not None else [])

    def __getattr__(self, k):
        return getattr(self._l, k)


def test_weight_scales_per_channel_group_and_6bit():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (4, 2, 3, 3)).astype(np.float32)
    s3 = calibrate.weight_scales(_Layer("Convolution", {0: 4, 1: 3, 6: w.size}, w))
    np.testing.assert_allclose(s3, 31 / np.abs(w.reshape(4, -1)).max(1), rtol=1e-6)
    s3s2 = calibrate.weight_scales(_Layer("Convolution", {0: 4, 1: 3, 3: 2, 6: w.size}, w))
    np.testing.assert_allclose(s3s2, 127 / np.abs(w.reshape(4, -1)).max(1), rtol=1e-6)
    dw = rng.normal(0, 1, (6, 1, 3, 3)).astype(np.float32)
    sdw = calibrate.weight_scales(_Layer("ConvolutionDepthWise", {0: 6, 1: 3, 6: dw.size, 7: 6}, dw))
    np.testing.assert_allclose(sdw, 127 / np.abs(dw.reshape(6, -1)).max(1), rtol=1e-6)
    zero = calibrate.weight_scales(_Layer("InnerProduct", {0: 2, 2: 4}, np.array([0, 0, 1, -2], np.float32)))
    np.testing.assert_allclose(zero, [1.0, 63.5])


def test_eq_picks_the_grid_best_and_fixes_a_clipping_start():
    rng = np.random.default_rng(4)
    w = rng.normal(0, 0.3, (8, 16)).astype(np.float32)
    b = rng.normal(0, 0.1, 8).astype(np.float32)
    layer = _Layer("InnerProduct", {0: 8, 1: 1, 2: w.size}, w, b)
    xs = [rng.laplace(0, 1, 16).astype(np.float32) for _ in range(8)]
    pairs = [(x, w @ x + b) for x in xs]
    ws0 = calibrate.weight_scales(layer)
    bs0 = 127 / (0.5 * max(np.abs(x).max() for x in xs))  # a deliberately clipping start

    from edgekit.quantize import reference

    def mean_cos(ws, bs):
        return np.mean([calibrate._cos(y, reference.forward_int8(layer, x, w, b, ws, bs)) for x, y in pairs])

    ws1, bs1 = calibrate.eq_search(layer, pairs, ws0, bs0, steps=40)
    assert mean_cos(ws1, bs1) > mean_cos(ws0, bs0)
    grid = [bs0 * 0.5 + k * (bs0 * 1.5 / 40) for k in range(40)]
    assert mean_cos(ws1, bs1) == pytest.approx(max(mean_cos(ws1, c) for c in grid), abs=1e-12)
    assert bs0 * 0.5 <= bs1 < bs0 * 2 and np.all((ws1 >= ws0 * 0.5 - 1e-6) & (ws1 < ws0 * 2))
