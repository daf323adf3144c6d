"""Requantize fusion: an int8 Convolution / ConvolutionDepthWise whose output only int8 convolutions read writes
int8 itself, so the next layer skips quantizing its fp32 input and this one skips dequantizing (ncnn2int8's
fuse_requantize, ncnn a4d2ea1 `tools/quantize/ncnn2int8.cpp` lines 845-1050).

What ncnn reads and runs (ncnn a4d2ea1):
- `int8_scale_term` + 100 (8=102 on Convolution, 8=101 on ConvolutionDepthWise), then one more raw fp32 value
  after the bottom scale, `top_blob_int8_scales` (`src/layer/convolution.cpp` load_model lines 75-84;
  `src/layer/convolutiondepthwise.cpp` lines 81-110).
- x86: `src/layer/x86/convolution_x86.cpp` forward_int8_x86 (line 995): an input of 8 bits is used as is (no
  quantize, line 1001), `use_int8_requantize = int8_scale_term > 100` (line 1027) gives an int8 output through
  `requantize_from_int32_to_int8` (line 1166, `src/mat.cpp` 2454 -> `src/layer/x86/requantize_x86.cpp`:
  dequantize, bias, any fused activation type via activation_sse/avx/avx512, then float2int8 with the top scale).
  `src/layer/x86/convolutiondepthwise_x86.cpp` forward_int8_x86 (line 858): the same for depthwise (int8 in at
  line 871, requantize at lines 1019-1066 / 1184), every activation type.
- InnerProduct reads an int8 input (`src/layer/x86/innerproduct_x86.cpp` line 399) but has no top scale, so it
  can only be a consumer; like ncnn2int8 this pass fuses only into Convolution / ConvolutionDepthWise consumers.
- A blob read by several layers goes through a Split, which passes the int8 Mat on unchanged; each consumer then
  takes the int8 values with its own bottom scale (`scale_in = 1 / (bottom_scale * weight_scale)`), so the
  producer may write int8 only when every consumer's bottom scale is the same (ncnn2int8 takes the first
  consumer's and assumes the rest agree; this pass checks).
- `Net::extract` of an int8 blob gives its raw int8 values as floats (`src/net.cpp` line 3007,
  cast_int8_to_float32), not dequantized: a model output is never fused."""
from __future__ import annotations

import numpy as np

from .ncnn_model import Layer, NcnnModel, fp32_blob

PRODUCERS = {"Convolution": 2, "ConvolutionDepthWise": 1}  # layer type -> its plain int8_scale_term


def consumers(model: NcnnModel) -> dict[str, list[Layer]]:
    """blob -> the layers that read it, looking through Split layers (whose tops are the same data)."""
    direct: dict[str, list[Layer]] = {}
    for layer in model.layers:
        for b in layer.bottoms:
            direct.setdefault(b, []).append(layer)

    def final(blob: str) -> list[Layer]:
        out = []
        for layer in direct.get(blob, []):
            out += [x for t in layer.tops for x in final(t)] if layer.type == "Split" else [layer]
        return out

    return {b: final(b) for b in direct}


def _int8_conv(layer: Layer) -> bool:
    return layer.type in PRODUCERS and layer.get(8, 0) % 100 == PRODUCERS[layer.type] and len(layer.bottoms) == 1


def fuse(model: NcnnModel) -> list[str]:
    """Make every int8 convolution whose top blob only int8 convolutions with one shared bottom scale read write
    int8 with that scale as its top scale; returns the fused layers' names. Idempotent."""
    readers = consumers(model)
    fused = []
    for layer in model.layers:
        if not _int8_conv(layer) or len(layer.tops) != 1 or layer.get(8, 0) > 100:
            continue
        users = readers.get(layer.tops[0], [])
        if not users or not all(_int8_conv(u) for u in users):
            continue
        scales = {float(u.blob("bottom_scale").floats()[0]) for u in users}
        if len(scales) != 1:
            continue
        layer.blobs.append(fp32_blob("top_scale", np.float32([scales.pop()]), False))
        layer.set(8, layer.get(8, 0) + 100)
        fused.append(layer.name)
    return fused


def int8_inputs(model: NcnnModel) -> set[str]:
    """The blobs that arrive int8 in `model` (the tops of fused layers, and the Split tops they feed)."""
    out = {l.tops[0] for l in model.layers if l.type in PRODUCERS and l.get(8, 0) > 100}
    for layer in model.layers:  # Split layers come after their producer in the .param
        if layer.type == "Split" and layer.bottoms[0] in out:
            out |= set(layer.tops)
    return out
