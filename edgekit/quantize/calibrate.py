"""Calibration for ncnn int8: activation scales (KL, ACIQ, EQ) and weight scales, as ncnn2table computes them.

Ported from ncnn a4d2ea1 `tools/quantize/ncnn2table.cpp`:
- weight scales (QuantNet::quantize_KL, lines 688-770; quant_6bit at 711): 127/absmax per output channel for
  Convolution and InnerProduct, per group for ConvolutionDepthWise; a 3x3 stride-1 dilation-1 Convolution gets 31/absmax
  (6-bit, "int8 winograd F43 needs weight data to use 6bit quantization"). ACIQ (quantize_ACIQ, ~1175-1262)
  uses the Gaussian clip of absmax instead of absmax (6 bits for the 3x3s1 case, line 1198).
- activations: one scale per layer input blob. KL (787-1150; threshold at 1145): absmax pass, 2048-bin histogram of
  |x| that skips exact zeros, then for each threshold 128..2047 the KL divergence between the clipped distribution and
  its 128-bin requantized expansion (eps 1e-4); threshold = (best + 0.5) * absmax / 2048, scale 127/threshold.
  ACIQ (compute_aciq_gaussian_clip, 1155-1164; quantize_ACIQ 1166-1373): alpha[bits-1] * absmax * 2 * c / sqrt(2 ln N),
  N = the blob's element count. EQ (quantize_EQ, 1501-1771): start from KL, then per layer search each weight scale and
  then the bottom scale over [0.5s, 2s) in 100 steps, keeping the one whose int8 layer output (fed the fp32
  input) has the highest mean cosine to the fp32 output, over at most 50 samples.
Blobs are read with the ncnn runtime itself (Extractor.extract on each layer's bottom blob), in fp32."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from . import reference

NUM_BINS = 2048
TARGET_BIN = 128
KL_EPS = 1e-4
EQ_SAMPLES = 50
EQ_STEPS = 100
_ALPHA_GAUSSIAN = [0, 1.71063519, 2.15159277, 2.55913646, 2.93620062, 3.28691474, 3.6151146, 3.92403714]


def fp32_net(param: str | Path, binf: str | Path, threads: int = 1):
    """An ncnn.Net loaded in true fp32 (no fp16/bf16 storage, no int8), for reading calibration blobs."""
    import ncnn

    net = ncnn.Net()
    for key in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage",
                "use_int8_inference"):
        setattr(net.opt, key, False)
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(binf)) != 0:
        raise EdgekitError(f"ncnn cannot load {param} / {binf}")
    return net


def extract(net, feeds: dict[str, np.ndarray], blobs: list[str]) -> dict[str, np.ndarray]:
    """Run `net` on `feeds` (ncnn input blob name -> array without batch axis) and return the named blobs."""
    import ncnn

    out = {}
    with net.create_extractor() as ex:
        ex.set_light_mode(False)
        for name, arr in feeds.items():
            # keep the contiguous copy referenced: ncnn.Mat(array) borrows its memory until clone()
            arr = np.ascontiguousarray(arr, np.float32)
            ex.input(name, ncnn.Mat(arr).clone())
        for name in blobs:
            ret, mat = ex.extract(name)
            if ret != 0:
                raise EdgekitError(f"ncnn: extracting blob {name} failed ({ret})")
            out[name] = np.array(mat)
    return out


@dataclass
class BlobStats:
    absmax: float = 0.0
    total: int = 0  # elements of one sample's blob (ncnn2table's stat.total)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BINS, np.int64))


def blob_stats(net, samples: list[dict], blobs: list[str], histogram: bool = True) -> dict[str, BlobStats]:
    """absmax over all samples, then (second pass, as ncnn2table) the |x| histogram in NUM_BINS bins."""
    stats = {b: BlobStats() for b in blobs}
    for feeds in samples:
        for name, arr in extract(net, feeds, blobs).items():
            st = stats[name]
            st.absmax = max(st.absmax, float(np.max(np.abs(arr))) if arr.size else 0.0)
            st.total = int(arr.size)
    if histogram:
        for feeds in samples:
            for name, arr in extract(net, feeds, blobs).items():
                st = stats[name]
                st.histogram += histogram_of(arr, st.absmax)
    return stats


def histogram_of(arr: np.ndarray, absmax: float) -> np.ndarray:
    """ncnn2table's bin count: zeros skipped, index min(int(|v| / absmax * 2048), 2047), in fp32."""
    v = np.abs(np.asarray(arr, np.float32).ravel())
    v = v[v != 0]
    if absmax == 0 or v.size == 0:
        return np.zeros(NUM_BINS, np.int64)
    idx = np.minimum((v / np.float32(absmax) * np.float32(NUM_BINS)).astype(np.int64), NUM_BINS - 1)
    return np.bincount(idx, minlength=NUM_BINS).astype(np.int64)


def kl_threshold_bin(histogram: np.ndarray) -> int:
    """The bin index (128..2047) with the least KL divergence, ncnn2table's search vectorised per threshold."""
    hist = np.asarray(histogram, np.float64)
    total = hist.sum()
    if total == 0:
        return NUM_BINS - 1
    hn = (hist / total).astype(np.float32).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(hn)])
    best, best_kl = TARGET_BIN, math.inf
    for t in range(TARGET_BIN, NUM_BINS):
        npb = float(np.float32(t) / np.float32(TARGET_BIN))
        edges = np.arange(TARGET_BIN + 1, dtype=np.float64) * npb
        edges[-1] = t
        fl = np.floor(edges).astype(np.int64)
        frac = edges - fl
        cum = csum[fl] + frac * np.append(hn, 0.0)[fl]  # mass of hn below each edge
        q = np.diff(cum) / npb  # density of each of the 128 bins
        clip = hn[:t] + KL_EPS
        clip[t - 1] += hn[t:].sum()
        # expand: bin k gets the integral over [k, k+1) of the piecewise-constant density q
        k = np.arange(t + 1, dtype=np.float64)
        j = np.minimum(np.searchsorted(edges, k, side="right") - 1, TARGET_BIN - 1)
        qcum = np.concatenate([[0.0], np.cumsum(q * npb)])
        big_f = qcum[j] + q[j] * (k - edges[j])
        expand = np.diff(big_f) + KL_EPS
        kl = float(np.sum(clip * np.log(clip / expand)))
        if kl < best_kl:
            best, best_kl = t, kl
    return best


def kl_scale(stats: BlobStats) -> float:
    if stats.absmax == 0:
        return 1.0
    threshold = (kl_threshold_bin(stats.histogram) + 0.5) * stats.absmax / NUM_BINS
    return 127 / threshold


def aciq_clip(absmax: float, n: int, bits: int = 8) -> float:
    gaussian_const = (0.5 * 0.35) * (1 + math.sqrt(math.pi * math.log(4)))
    std = (absmax * 2 * gaussian_const) / math.sqrt(2 * math.log(n))
    return _ALPHA_GAUSSIAN[bits - 1] * std


def aciq_scale(stats: BlobStats) -> float:
    if stats.absmax == 0 or stats.total < 2:
        return 1.0
    return 127 / aciq_clip(stats.absmax, stats.total)


def six_bit(layer) -> bool:
    """ncnn2table's condition for 6-bit weights (the int8 winograd F43 path): 3x3, stride 1, dilation 1."""
    g = layer.get
    kw, dw, sw = g(1, 0), g(2, 1), g(3, 1)
    return (layer.type == "Convolution" and kw == 3 and g(11, kw) == 3 and dw == 1 and g(12, dw) == 1
            and sw == 1 and g(13, sw) == 1)


def weight_scales(layer, method: str = "kl") -> np.ndarray:
    """Per output channel (Convolution, InnerProduct) or per group (ConvolutionDepthWise) scales."""
    w = layer.blob("weight").floats()
    rows = layer.get(7, 1) if layer.type == "ConvolutionDepthWise" else layer.get(0, 0)
    w = w.reshape(rows, -1)
    absmax = np.abs(w).max(axis=1).astype(np.float64)
    bits = 6 if six_bit(layer) else 8
    qmax = 31 if bits == 6 else 127
    if method == "aciq":
        limit = np.array([aciq_clip(a, w.shape[1], bits) for a in absmax])
    else:
        limit = absmax
    # an all-zero (or denormal) channel would get an infinite scale and NaN weights: it quantizes to 0 at scale 1
    tiny = limit < 1e-30
    return np.where(tiny, 1.0, qmax / np.where(tiny, 1, limit)).astype(np.float32)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den == 0:  # an all-zero output (a dead ReLU branch): equal if both are zero
        return 1.0 if not a.any() and not b.any() else 0.0
    return float(a @ b / den)


def eq_search(layer, pairs: list[tuple[np.ndarray, np.ndarray]], wscales: np.ndarray, bscale: float,
              steps: int = EQ_STEPS) -> tuple[np.ndarray, float]:
    """ncnn2table's EQ for one layer: `pairs` are (fp32 input, fp32 output) of the layer per sample."""
    weight = layer.blob("weight").floats()
    bias_blob = layer.blob("bias")
    bias = bias_blob.floats() if bias_blob is not None else None
    wscales = np.array(wscales, np.float32)

    def best(candidates, run):
        sims = np.zeros(len(candidates))
        for x, y in pairs:
            sims += [_cos(y, run(x, c)) for c in candidates]
        k = int(np.argmax(sims))  # first maximum, as ncnn's strict '<'
        return candidates[k] if sims[k] > 0 else None

    for j in range(wscales.size):
        s = float(wscales[j])
        cands = [s * 0.5 + k * (s * 1.5 / steps) for k in range(steps)]

        def run_w(x, c, j=j):
            ws = wscales.copy()
            ws[j] = c
            return reference.forward_int8(layer, x, weight, bias, ws, bscale)

        found = best(cands, run_w)
        if found is not None:
            wscales[j] = found
    cands = [bscale * 0.5 + k * (bscale * 1.5 / steps) for k in range(steps)]
    found = best(cands, lambda x, c: reference.forward_int8(layer, x, weight, bias, wscales, c))
    return wscales, float(found if found is not None else bscale)


def choose_bottom_scale(layer, pairs: list[tuple[np.ndarray, np.ndarray]], wscales: np.ndarray,
                        candidates: dict[str, float]) -> tuple[str, float, dict[str, float]]:
    """edgekit's addition (not in ncnn2table): of several bottom scales (KL, ACIQ, absmax), the one whose int8
    layer output is closest (mean cosine) to the fp32 output. KL alone clips outlier channels and the tiny
    SE-block vectors of PP-LCNet, which no 0.5x-2x EQ search can recover."""
    weight = layer.blob("weight").floats()
    bias_blob = layer.blob("bias")
    bias = bias_blob.floats() if bias_blob is not None else None
    sims = {k: _layer_cosine(layer, pairs, weight, bias, wscales, s) for k, s in candidates.items()}
    best = max(sims, key=lambda k: sims[k])
    return best, candidates[best], sims


def bias_correction(layer, pairs: list[tuple[np.ndarray, np.ndarray]], wscales: np.ndarray,
                    bscale: float) -> tuple[np.ndarray, float]:
    """(per-channel bias shift, the layer's mean int8 output cosine to fp32 with it) on `pairs` (reference.bias_shift:
    the mean error int8 rounding and clipping leave in each output channel)."""
    weight = layer.blob("weight").floats()
    bias_blob = layer.blob("bias")
    shift = reference.bias_shift(layer, [x for x, _ in pairs], weight, wscales, bscale)
    bias = shift + (bias_blob.floats() if bias_blob is not None else 0)
    return shift, _layer_cosine(layer, pairs, weight, bias, wscales, bscale)


def _layer_cosine(layer, pairs: list[tuple[np.ndarray, np.ndarray]], weight: np.ndarray, bias: np.ndarray | None,
                  wscales: np.ndarray, bscale: float) -> float:
    """The mean cosine of the layer's int8 output (numpy arithmetic) to its fp32 output over `pairs`."""
    return float(np.mean([_cos(y, reference.forward_int8(layer, x, weight, bias, wscales, bscale)) for x, y in pairs]))
