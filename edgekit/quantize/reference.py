"""The arithmetic of ncnn's int8 Convolution / ConvolutionDepthWise / InnerProduct, in numpy.

What ncnn does (ncnn a4d2ea1 `src/layer/convolution.cpp` forward_int8, `src/layer/x86/convolution_x86.cpp`
create_pipeline_int8_x86 / forward_int8_x86, `src/layer/quantize.cpp` float2int8): quantize the fp32 input
with the bottom scale (round half away from zero, clamp to [-127, 127]), accumulate int8 x int8 in int32,
dequantize channel p with 1 / (bottom_scale * weight_scale[p]) (0 where the weight scale is 0), add the fp32
bias, then the fused activation (`src/layer/fused_activation.h`); a requantizing layer (8=10x, see ncnn_requantize)
then writes float2int8(y * top_scale) instead of y. Used by EQ calibration and as the tests' oracle.
Not bit-exact everywhere: x86 depthwise dequantizes with `_mm_rcp_ps` (`src/layer/x86/convolutiondepthwise_x86.cpp`
~line 996), an approximate reciprocal good to ~2^-12."""
from __future__ import annotations

import numpy as np


def float2int8(v: np.ndarray) -> np.ndarray:
    """round() then clamp to [-127, 127], as ncnn's float2int8 (computed in fp32, like ncnn)."""
    v = np.asarray(v, np.float32)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)), -127, 127).astype(np.int8)


def quantize_rows(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Weights [rows, ...] -> int8 with one scale per row (quantize_to_int8 on a weight Mat)."""
    w = np.asarray(w, np.float32).reshape(len(scales), -1)
    return float2int8(w * np.asarray(scales, np.float32)[:, None])


def activation(x: np.ndarray, kind: int, params: list[float] | None) -> np.ndarray:
    p = params or []
    if kind == 0:
        return x
    if kind == 1:
        return np.maximum(x, 0)
    if kind == 2:
        return np.where(x > 0, x, x * (p[0] if p else 0.0))
    if kind == 3:
        return np.clip(x, p[0], p[1])
    if kind == 4:
        return 1 / (1 + np.exp(-x))
    if kind == 5:
        return x * np.tanh(np.log1p(np.exp(x)))
    if kind == 6:
        return x * np.clip(x * p[0] + p[1], 0, 1)
    raise ValueError(f"unknown ncnn activation type {kind}")


def _pads(layer, h: int, w: int, kext_h: int, kext_w: int, sh: int, sw: int) -> tuple[int, int, int, int]:
    g = layer.get
    left = g(4, 0)
    right, top = g(15, left), g(14, left)
    bottom = g(16, top)
    if left in (-233, -234):  # SAME_UPPER / SAME_LOWER (Convolution::make_padding)
        wpad = kext_w + (w - 1) // sw * sw - w
        hpad = kext_h + (h - 1) // sh * sh - h
        if left == -233:
            return hpad // 2, hpad - hpad // 2, wpad // 2, wpad - wpad // 2
        return hpad - hpad // 2, hpad // 2, wpad - wpad // 2, wpad // 2
    return top, bottom, left, right


def conv_int32(xq: np.ndarray, wq: np.ndarray, layer, pad_value: float = 0.0) -> np.ndarray:
    """Integer convolution of an int8 input [C, H, W] with int8 weights [O, C/group, kh, kw] (exact, in float64)."""
    g = layer.get
    kw = g(1, 0)
    kh, dw, sw = g(11, kw), g(2, 1), g(3, 1)
    dh, sh = g(12, dw), g(13, sw)
    group = g(7, 1) if layer.type == "ConvolutionDepthWise" else 1
    c, h, w = xq.shape
    kext_h, kext_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    top, bottom, left, right = _pads(layer, h, w, kext_h, kext_w, sh, sw)
    x = np.pad(xq.astype(np.float64), ((0, 0), (top, bottom), (left, right)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, (kext_h, kext_w), axis=(1, 2))[:, ::sh, ::sw, ::dh, ::dw]
    o = wq.shape[0]
    cg, og = c // group, o // group
    if cg == 1 and og == 1:  # depthwise: one einsum over all channels
        return np.einsum("chwij,cij->chw", win, wq[:, 0].astype(np.float64), optimize=True)
    out = np.empty((o, win.shape[1], win.shape[2]))
    for gi in range(group):
        xs = win[gi * cg:(gi + 1) * cg]  # [cg, OH, OW, kh, kw]
        ws = wq[gi * og:(gi + 1) * og].astype(np.float64)  # [og, cg, kh, kw]
        out[gi * og:(gi + 1) * og] = np.einsum("chwij,ocij->ohw", xs, ws, optimize=True)
    return out


def weight_shape(layer, num_input: int | None = None) -> tuple[int, ...]:
    """The [O, C/group, kh, kw] (conv) or [O, K] (InnerProduct) shape of a layer's flat weight."""
    g = layer.get
    o, size = g(0, 0), g(6, 0) if layer.type != "InnerProduct" else g(2, 0)
    if layer.type == "InnerProduct":
        return o, size // o
    kw = g(1, 0)
    kh = g(11, kw)
    return o, size // (o * kh * kw), kh, kw


def forward_int8(layer, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, weight_scales: np.ndarray,
                 bottom_scale: float, top_scale: float | None = None, int8_input: bool = False) -> np.ndarray:
    """ncnn's int8 forward of one layer on fp32 input `x` (ncnn blob layout, no batch axis), fp32 out.
    `int8_input`: `x` already holds the int8 values (an input written by a requantizing layer);
    `top_scale`: requantize (8=10x): the output is float2int8(activation(y) * top_scale), as int8."""
    bs = np.float32(bottom_scale)
    xq = np.asarray(x).astype(np.int8) if int8_input else float2int8(np.asarray(x, np.float32) * bs)
    y = _forward_q(layer, xq, weight, bias, weight_scales, bs)
    return y if top_scale is None else float2int8(y * np.float32(top_scale))


def _forward_q(layer, xq, weight, bias, weight_scales, bs) -> np.ndarray:
    y = preactivation(layer, xq, weight, weight_scales, bs)
    if bias is not None:
        b = np.asarray(bias, np.float32)
        y = y + (b if layer.type == "InnerProduct" else b[:, None, None])
    y = activation(y, layer.get(9, 0), layer.get_array(10))
    return y.reshape(-1) if layer.type == "InnerProduct" and xq.ndim != 2 and y.shape[0] == 1 else y


def _rows(layer, x: np.ndarray) -> np.ndarray:
    """An InnerProduct's input as [rows, K]: a 2D blob is one row per line, anything else one flat row."""
    k = weight_shape(layer)[1]
    return x.reshape(-1, k) if x.ndim == 2 and x.shape[-1] == k else x.reshape(1, -1)


def preactivation(layer, x: np.ndarray, weight: np.ndarray, weight_scales: np.ndarray | None = None,
                  bottom_scale: float | None = None) -> np.ndarray:
    """The layer's output before bias and activation ([O, H, W], or [rows, O] for an InnerProduct): in float64
    on fp32 `x` and weights when no scales are given, else ncnn's int8 arithmetic on the int8 input `x`,
    dequantized (what _forward_q continues from)."""
    shape = weight_shape(layer)
    o = shape[0]
    if weight_scales is None:
        w, scale_out = np.asarray(weight, np.float64).reshape(shape), None
    else:
        ws = np.asarray(weight_scales, np.float32)
        w = quantize_rows(weight, ws).reshape(shape)
        if layer.type == "ConvolutionDepthWise":
            group = layer.get(7, 1)
            ws = np.repeat(ws, o // group) if ws.size == group else np.full(o, ws[0], np.float32)
        scale_out = np.where(ws == 0, 0, 1 / (np.float32(bottom_scale) * ws)).astype(np.float32)
    if layer.type == "InnerProduct":
        acc = _rows(layer, x).astype(np.float64) @ w.astype(np.float64).T  # [rows, O]
        return acc if scale_out is None else acc.astype(np.float32) * scale_out
    acc = conv_int32(x, w, layer)
    return acc if scale_out is None else acc.astype(np.float32) * scale_out[:, None, None]


def bias_shift(layer, pairs_x: list[np.ndarray], weight: np.ndarray, weight_scales: np.ndarray,
               bottom_scale: float) -> np.ndarray:
    """Per output channel, the mean of (fp32 - int8) pre-activation output over the fp32 inputs `pairs_x`: what
    adding to the bias removes (empirical bias correction: Nagel et al. 2019, "Data-Free Quantization", sec. 4.2;
    NNCF's BiasCorrection). Rounding the weights and clipping the input shift each channel's mean, most where a
    channel has few weights (depthwise) or a skewed input; the shift survives every later layer."""
    total = np.zeros(weight_shape(layer)[0])
    for x in pairs_x:
        xq = float2int8(np.asarray(x, np.float32) * np.float32(bottom_scale))
        d = preactivation(layer, x, weight) - preactivation(layer, xq, weight, weight_scales, bottom_scale)
        total += d.mean(axis=0) if layer.type == "InnerProduct" else d.mean(axis=(1, 2))
    return (total / max(len(pairs_x), 1)).astype(np.float32)
