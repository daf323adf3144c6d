"""Which layers int8 makes slower, measured with the ncnn runtime, so they can be kept in float.

On this x86 machine ncnn's int8 path loses on some layers (measured on PP-OCRv4 det, 1 thread: every
ConvolutionDepthWise, and convolutions with few channels at high resolution, where quantizing the fp32 input
costs more than the int8 arithmetic saves), and wins ~1.5-2x on wide 1x1 / 3x3 convolutions. Each quantized
layer is timed alone (a two-layer model: Input + that layer) on its real input, fp32 and int8 interleaved;
the fastest of the repeats counts, since the machine is shared. With requantize fusion (ncnn_requantize) a layer
is timed as it runs in the int8 model: an input that arrives int8 there is fed int8 (no quantize step) and a
fused layer writes int8 (no dequantize), so a layer between two int8 layers is judged on its int8 arithmetic
alone. Which inputs arrive int8 depends on which neighbours stay float: profile a model quantized with the
candidate float set, keep the slower layers float, and quantize again (fusion is recomputed)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import calibrate, reference
from .ncnn_model import Layer, NcnnModel
from .ncnn_requantize import int8_inputs


@dataclass
class LayerSpeed:
    name: str
    type: str
    fp32_ms: float
    int8_ms: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms if self.int8_ms else float("inf")


def _alone(layer: Layer, folder: Path, tag: str) -> tuple[Path, Path]:
    one = NcnnModel([Layer("Input", "in0", [], [layer.bottoms[0]], {}, f"Input in0 0 1 {layer.bottoms[0]}"), layer],
                    len(layer.tops) + 1)
    param, binf = folder / f"{tag}.param", folder / f"{tag}.bin"
    one.write(param, binf)
    return param, binf


def _time(net, blob_in: str, blob_out: str, x: np.ndarray) -> float:
    import ncnn

    t = time.perf_counter()
    with net.create_extractor() as ex:
        ex.input(blob_in, ncnn.Mat(x))
        ex.extract(blob_out)
    return time.perf_counter() - t


def layer_speeds(param, binf, int8_param, int8_bin, feeds: dict, threads: int = 1,
                 repeats: int = 9) -> list[LayerSpeed]:
    """fp32 vs int8 time of every int8 layer of the int8 model, alone, on `feeds` (ncnn blob name -> array)."""
    from .ncnn_int8 import fp32_rewrites, int8_net

    src, q = NcnnModel.read(param, binf), NcnnModel.read(int8_param, int8_bin)
    fp32_rewrites(src, param, binf, feeds, set())  # the fp32 graph the int8 one was made from (quantize's)
    layers = [l for l in q.quantizable() if l.get(8, 0)]
    arrives_int8 = int8_inputs(q)
    out = []
    with tempfile.TemporaryDirectory(prefix="edgekit-int8-prof-") as tmp:
        src.write(Path(tmp) / "src.param", Path(tmp) / "src.bin")
        net = calibrate.fp32_net(Path(tmp) / "src.param", Path(tmp) / "src.bin", threads)
        try:
            inputs = calibrate.extract(net, feeds, sorted({l.bottoms[0] for l in layers}))
        finally:
            net.clear()
        for lq in layers:
            x = np.ascontiguousarray(inputs[lq.bottoms[0]])
            x8 = x
            if lq.bottoms[0] in arrives_int8:  # as the int8 model hands it over: already quantized
                x8 = np.ascontiguousarray(reference.float2int8(x * lq.blob("bottom_scale").floats()[0]))
            nets = [calibrate.fp32_net(*_alone(src.layer(lq.name), Path(tmp), "fp32"), threads),
                    int8_net(*_alone(lq, Path(tmp), "int8"), threads)]
            times = [[], []]
            for _ in range(repeats):
                for k, n in enumerate(nets):
                    times[k].append(_time(n, lq.bottoms[0], lq.tops[0], x8 if k else x))
            for n in nets:
                n.clear()
            out.append(LayerSpeed(lq.name, lq.type, min(times[0]) * 1e3, min(times[1]) * 1e3))
    return out


def slower_in_int8(speeds: list[LayerSpeed], min_speedup: float = 1.05, min_share: float = 0.0) -> set[str]:
    """Names of the layers whose int8 run is not at least `min_speedup` times faster than fp32; with `min_share`,
    only those whose fp32 time is at least that share of all the layers' (tiny layers' timings are noise)."""
    total = sum(s.fp32_ms for s in speeds) or 1.0
    return {s.name for s in speeds if s.speedup < min_speedup and s.fp32_ms >= min_share * total}
