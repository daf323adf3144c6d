"""Read and write ncnn .param/.bin in Python, so int8 rewriting needs no ncnn C++ tools.

The .bin has no index: each layer's load_model reads its blobs in order, so locating a Convolution's weights
means walking every layer's blobs with the sizes that layer's load_model asks for. `_blob_plan` restates those
reads (ncnn a4d2ea1, `src/layer/<type>.cpp` load_param/load_model: convolution.cpp, convolutiondepthwise.cpp,
innerproduct.cpp, deconvolution*.cpp, gemm.cpp, multiheadattention.cpp, batchnorm.cpp, scale.cpp, ...).
Blob formats (`src/modelbin.cpp` ModelBinFromDataReader::load): type 0 is tagged — a u32 tag, 0 = fp32,
0x01306B47 = fp16 (size aligned to 4), 0x000D4B38 = int8 (aligned to 4), 0x0002C056 = fp32, any other non-zero
tag = 256-entry fp32 table + u8 indices (aligned to 4); type 1 is raw fp32 with no tag (biases, scales). The
writer side is `tools/modelwriter.h` (fwrite_weight_tag_data / fwrite_weight_data: 4-byte padding).

Unmodified layers keep their original .param line and .bin bytes, so read+write is byte-identical."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgekitError

MAGIC = "7767517"
TAG_FP32, TAG_FP16, TAG_INT8, TAG_FP32_SCALED = 0, 0x01306B47, 0x000D4B38, 0x0002C056
QUANTIZABLE = ("Convolution", "ConvolutionDepthWise", "InnerProduct")


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


@dataclass
class Blob:
    """One load_model read: `tagged` is ModelBin type 0, else type 1 (raw fp32)."""
    role: str
    count: int
    tagged: bool
    raw: bytes = b""

    @property
    def tag(self) -> int | None:
        return int.from_bytes(self.raw[:4], "little") if self.tagged else None

    def floats(self) -> np.ndarray:
        """The data as fp32 (fp32, fp16 and int8-free tags; int8 blobs are returned as their int8 values)."""
        if not self.tagged:
            return np.frombuffer(self.raw, "<f4", self.count).copy()
        tag, body = self.tag, self.raw[4:]
        if tag in (TAG_FP32, TAG_FP32_SCALED):
            return np.frombuffer(body, "<f4", self.count).copy()
        if tag == TAG_FP16:
            return np.frombuffer(body, "<f2", self.count).astype(np.float32)
        if tag == TAG_INT8:
            return np.frombuffer(body, np.int8, self.count).astype(np.float32)
        table = np.frombuffer(body, "<f4", 256)
        return table[np.frombuffer(body[1024:], np.uint8, self.count)].astype(np.float32)


def fp32_blob(role: str, values: np.ndarray, tagged: bool) -> Blob:
    values = np.ascontiguousarray(values, "<f4").ravel()
    return Blob(role, values.size, tagged, (TAG_FP32.to_bytes(4, "little") if tagged else b"") + values.tobytes())


def int8_blob(role: str, values: np.ndarray) -> Blob:
    """A tagged int8 weight blob as modelwriter.h writes it (tag, bytes, zero padding to 4)."""
    values = np.ascontiguousarray(values, np.int8).ravel()
    body = values.tobytes()
    return Blob(role, values.size, True,
                TAG_INT8.to_bytes(4, "little") + body + b"\0" * (_align4(len(body)) - len(body)))


def fp16_blob(role: str, values: np.ndarray) -> Blob:
    """A tagged fp16 weight blob (tag 0x01306B47, halves, zero padding to 4), as modelwriter.h writes it."""
    body = np.ascontiguousarray(values, "<f4").ravel().astype("<f2").tobytes()
    return Blob(role, len(body) // 2, True,
                TAG_FP16.to_bytes(4, "little") + body + b"\0" * (_align4(len(body)) - len(body)))


def _tagged_size(buf: bytes, pos: int, count: int) -> int:
    tag = int.from_bytes(buf[pos:pos + 4], "little")
    if tag == TAG_FP16:
        return 4 + _align4(count * 2)
    if tag == TAG_INT8:
        return 4 + _align4(count)
    if tag in (TAG_FP32, TAG_FP32_SCALED):
        return 4 + count * 4
    return 4 + 1024 + _align4(count)


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, str]  # raw value text, in file order; array params keep their -233xx key
    line: str
    blobs: list[Blob] = field(default_factory=list)
    dirty: bool = False

    def get(self, key: int, default=0):
        """A scalar param as int or float (ncnn's rule: a value with '.', 'e' or 'E' is a float)."""
        if key not in self.params:
            return default
        v = self.params[key]
        return float(v) if re.search(r"[.eE]", v) and not v.lstrip("-").isdigit() else int(v)

    def get_array(self, key: int) -> list[float] | None:
        v = self.params.get(-23300 - key)
        return None if v is None else [float(x) for x in v.split(",")[1:]]

    def set(self, key: int, value) -> None:
        self.params[key] = str(value)
        self.dirty = True

    def blob(self, role: str) -> Blob | None:
        return next((b for b in self.blobs if b.role == role), None)

    def render(self) -> str:
        if not self.dirty:
            return self.line
        head = f"{self.type:<24} {self.name:<24} {len(self.bottoms)} {len(self.tops)}"
        return " ".join([head, *self.bottoms, *self.tops, *(f"{k}={v}" for k, v in self.params.items())])


def _blob_plan(layer: Layer) -> list[tuple[str, int, bool]]:
    """(role, element count, tagged) for each read this layer's load_model makes, in order."""
    t, g = layer.type, layer.get
    plan: list[tuple[str, int, bool]] = []
    conv_like = t in ("Convolution", "ConvolutionDepthWise", "Convolution1D", "ConvolutionDepthWise1D",
                      "Convolution3D", "ConvolutionDepthWise3D", "DeformableConv2D")
    deconv_like = t.startswith("Deconvolution")
    if conv_like or deconv_like:
        dynamic = g(28 if deconv_like else 19, 0) if not t.endswith("3D") else 0
        if dynamic:
            return plan
        num_output = g(0, 0)
        plan.append(("weight", g(6, 0), True))
        if g(5, 0):
            plan.append(("bias", num_output, False))
        int8 = g(8, 0) if t in ("Convolution", "ConvolutionDepthWise") else 0
        if int8:
            if t == "ConvolutionDepthWise":
                plan.append(("weight_scales", g(7, 1) if int8 in (1, 101) else 1, False))
            else:
                plan.append(("weight_scales", num_output, False))
            plan.append(("bottom_scale", 1, False))
            if int8 > 100:
                plan.append(("top_scale", 1, False))
    elif t == "InnerProduct":
        plan.append(("weight", g(2, 0), True))
        if g(1, 0):
            plan.append(("bias", g(0, 0), False))
        if g(8, 0):
            plan += [("weight_scales", g(0, 0), False), ("bottom_scale", 1, False)]
    elif t == "BatchNorm":
        plan += [(r, g(0, 0), False) for r in ("slope", "mean", "var", "bias")]
    elif t == "Bias":
        plan.append(("bias", g(0, 0), False))
    elif t == "Scale":
        if g(0, 0) != -233:
            plan.append(("scale", g(0, 0), False))
            if g(1, 0):
                plan.append(("bias", g(0, 0), False))
    elif t == "PReLU":
        plan.append(("slope", g(0, 0), False))
    elif t in ("LayerNorm", "InstanceNorm", "RMSNorm", "GroupNorm"):
        size, affine = (g(1, 0), g(3, 1)) if t == "GroupNorm" else (g(0, 0), g(2, 1))
        if affine:
            plan.append(("gamma", size, False))
            if t != "RMSNorm":
                plan.append(("beta", size, False))
    elif t == "MemoryData":
        n = max(g(0, 0), 1) * max(g(1, 0), 1) * max(g(11, 0), 1) * max(g(2, 0), 1) if g(0, 0) else 0
        if n:
            plan.append(("data", n, g(21, 1) == 0))
    elif t == "Gemm":
        if g(18, 0) >= 400:
            raise EdgekitError(f"{layer.name}: block-quantized Gemm weights are not supported")
        m, n, k = g(7, 0), g(8, 0), g(9, 0)
        if g(4, 0):
            plan.append(("A", m * k, True))
        if g(5, 0):
            plan.append(("B", n * k, True))
        bt = g(10, 0)
        if g(6, 0) and bt != -1:
            plan.append(("C", {0: 1, 1: m, 2: m, 3: n * m, 4: n}[bt], True))
        if g(18, 0):
            if g(4, 0):
                plan.append(("A_scales", m, False))
            if g(5, 0):
                plan.append(("B_scale", 1, False))
    elif t == "MultiHeadAttention":
        if g(18, 0) >= 400:
            raise EdgekitError(f"{layer.name}: block-quantized MultiHeadAttention weights are not supported")
        e = g(0, 0)
        qdim = g(2, 0) // e if e else 0
        kdim, vdim = g(3, e), g(4, e)
        for r, size, bias in (("q", e * qdim, e), ("k", e * kdim, e), ("v", e * vdim, e), ("out", qdim * e, qdim)):
            plan += [(f"{r}_weight", size, True), (f"{r}_bias", bias, False)]
        if g(18, 0):
            plan += [("q_scales", e, False), ("k_scales", e, False), ("v_scales", e, False), ("out_scale", 1, False)]
    elif t == "Embed":
        plan.append(("weight", g(3, 0), True))
        if g(2, 0):
            plan.append(("bias", g(0, 0), False))
        if g(18, 0):
            plan.append(("weight_scale", 1, False))
    elif t == "Normalize":
        plan.append(("scale", g(3, 0), False))
    elif t == "Padding":
        if g(6, 0):
            plan.append(("pad", g(6, 0), False))
    elif t in ("Quantize", "Dequantize", "Requantize"):
        raise EdgekitError(f"{layer.name}: {t} layers (an already quantized model) are not supported")
    elif t in ("RNN", "LSTM", "GRU"):
        raise EdgekitError(f"{layer.name}: {t} weights are not supported by this reader")
    return plan


@dataclass
class NcnnModel:
    layers: list[Layer]
    blob_count: int
    tail: bytes = b""  # bytes after the last layer's blobs (none in a well-formed file)

    @classmethod
    def read(cls, param: str | Path, binf: str | Path) -> "NcnnModel":
        lines = Path(param).read_text().split("\n")
        if not lines or lines[0].strip() != MAGIC:
            raise EdgekitError(f"{param}: not an ncnn .param (first line is not {MAGIC})")
        layer_count, blob_count = (int(x) for x in lines[1].split())
        layers = [_parse_line(line) for line in lines[2:] if line.strip()]
        if len(layers) != layer_count:
            raise EdgekitError(f"{param}: header says {layer_count} layers, found {len(layers)}")
        buf = Path(binf).read_bytes()
        pos = 0
        for layer in layers:
            for role, count, tagged in _blob_plan(layer):
                size = _tagged_size(buf, pos, count) if tagged else count * 4
                if pos + size > len(buf):
                    raise EdgekitError(f"{binf}: ends inside {layer.type} {layer.name} ({role}); the .bin does "
                                       f"not belong to this .param or a layer type is read wrongly")
                layer.blobs.append(Blob(role, count, tagged, buf[pos:pos + size]))
                pos += size
        if pos != len(buf):
            raise EdgekitError(f"{binf}: {len(buf) - pos} bytes left after the last layer; a layer type this "
                               f"reader does not know carries weights")
        return cls(layers, blob_count, buf[pos:])

    def write(self, param: str | Path, binf: str | Path) -> None:
        text = "\n".join([MAGIC, f"{len(self.layers)} {self.blob_count}", *(l.render() for l in self.layers)]) + "\n"
        Path(param).write_text(text)
        Path(binf).write_bytes(b"".join(b.raw for l in self.layers for b in l.blobs) + self.tail)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise EdgekitError(f"no layer named {name}")

    def outputs(self) -> set[str]:
        """The blobs no layer consumes (the model's outputs)."""
        used = {b for l in self.layers for b in l.bottoms}
        return {t for l in self.layers for t in l.tops if t not in used}

    def quantizable(self) -> list[Layer]:
        return [l for l in self.layers if l.type in QUANTIZABLE and l.blob("weight") is not None]


_HEAD = re.compile(r"\s*(\S+)\s+(\S+)\s+(\d+)\s+(\d+)")


def _parse_line(line: str) -> Layer:
    m = _HEAD.match(line)
    if not m:
        raise EdgekitError(f"bad .param layer line: {line!r}")
    nb, nt = int(m[3]), int(m[4])
    rest = line[m.end():].split()
    if len(rest) < nb + nt:
        raise EdgekitError(f"bad .param layer line (missing blob names): {line!r}")
    params: dict[int, str] = {}
    for tok in rest[nb + nt:]:
        k, _, v = tok.partition("=")
        params[int(k)] = v
    return Layer(m[1], m[2], rest[:nb], rest[nb:nb + nt], params, line)
