"""int8 with an accuracy budget: quantize, measure, and move the most harmful layers back to float until the model
meets the budget (as NNCF's accuracy control does), measured on the ncnn runtime itself.

Starting point: depthwise convolutions stay float. Measured here (benchmarks/results/ncnn_int8.json), every
depthwise layer of PP-OCR cls/rec/det was slower in int8 than in fp32 on x86 and they are the layers whose per-
channel ranges suffer most, so quantizing them costs accuracy for no speed. Then, while the worst output cosine
of the int8 model against the fp32 ncnn model on the calibration samples is below 1 - max_drop (or the export's
gate fails), the most harmful quantized layers are kept float, a tenth of the remaining ones (at least one) per
round; each layer's scales are calibrated once for all rounds. Harm is the output drop a layer causes when it
alone is int8 (NNCF's "one group at a time"), measured once, after the first failed round, on that round's
worst samples; ties go by the layer's own int8 output cosine. A layer's own cosine alone misleads: on PP-OCRv4
det every int8 layer kept >= 0.998 of its own output, yet one early 1x1 convolution alone took a calibration
page's output cosine to 0.87, and 8 rounds by own cosine never found it (drop stuck at 0.058 with 37 layers
float); by solo drop the loop passed in 4 rounds with 36 layers int8. Ranking by the drop left when each layer
alone goes back to float (the other NNCF variant) was measured earlier and also lost (interactions hide the
culprit). Layers kept float store fp16 weights (ncnn widens them to fp32 at load; they compute in fp32), which
keeps the file near a quarter of the fp32 one."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .calibrate import _cos, extract, fp32_net
from .ncnn_int8 import QuantizeReport, feeds_for_ncnn, int8_net, quantize
from .ncnn_model import NcnnModel
from .profile import layer_speeds, slower_in_int8
from .repair import ROUNDS, Attempt, measure, within_budget

__all__ = ["ROUNDS", "FallbackReport", "quantize_within"]

SPEED_MIN_SHARE = 0.01  # a layer under 1% of the summed layer time is below the timing's resolution
SOLO_SAMPLES = 4  # the sensitivity ranking runs each layer alone in int8 on this many of the worst samples


@dataclass
class FallbackReport:
    report: QuantizeReport
    drop: float  # 1 - the worst output cosine, int8 vs fp32 ncnn, over the calibration samples
    rounds: list[dict] = field(default_factory=list)  # per round: layers kept float, drop
    why: dict = field(default_factory=dict)  # layer kept float -> why


def quantize_within(param: Path, binf: Path, out_param: Path, out_bin: Path, samples: list[dict],
                    input_names: dict[str, str], outputs: list[str], max_drop: float,
                    drop_batch: bool = True, accept=None, requantize: bool = True,
                    depthwise_float: bool = True, speed_profile: bool = False) -> FallbackReport:
    """Quantize `param`/`binf` into `out_param`/`out_bin`, keeping layers float until the drop is within
    `max_drop` (or every layer is float: then the drop is reported, and the caller's gate refuses it).
    `accept(fp32 outputs, int8 outputs)` (blob names), when given, is the gate instead of the cosine drop:
    the export's own, with its task metric. `requantize`: ncnn_int8.quantize's requantize fusion (on: int8
    between int8 convolutions); `depthwise_float=False` lets depthwise layers start int8 too (with fusion they
    can read and write int8; measured on PP-OCR det the loop then moves all but one back to float anyway).
    `speed_profile`: first quantize with that float set, time every int8 layer alone as it runs there
    (profile.layer_speeds, 1 thread) and keep float those measurably slower in int8 (profile.slower_in_int8 with
    `min_share`); off by default, since it costs a run per layer and its verdict on a loaded machine varies
    between exports (PP-OCRv4 det, 1 thread: ~3-8% faster, 0.36x size instead of 0.33x)."""
    model = NcnnModel.read(param, binf)
    keep = {layer.name: "depthwise: slower in int8 than fp32 on x86, and the least accurate"
            for layer in model.quantizable() if layer.type == "ConvolutionDepthWise" and depthwise_float}
    feeds = feeds_for_ncnn(samples, input_names, drop_batch)
    fp32 = fp32_net(param, binf)
    try:
        ref = [extract(fp32, f, outputs) for f in feeds]
    finally:
        fp32.clear()

    cache: dict = {}  # each layer's calibrated scales, computed once for all rounds

    def write(kept: set) -> QuantizeReport:  # the int8 model with `kept` in float, into out_param / out_bin
        return quantize(param, binf, out_param, out_bin, samples, input_names, method="best", keep_float=kept,
                        drop_batch=drop_batch, float_weights="fp16", requantize=requantize, cache=cache)

    def run(which: list[int]) -> tuple[list[float], list[dict]]:  # the written model on samples `which`
        net = int8_net(out_param, out_bin)
        try:
            got = [extract(net, feeds[i], outputs) for i in which]
        finally:
            net.clear()
        return [max(1 - _cos(ref[i][o], g[o]) for o in outputs) for i, g in zip(which, got)], got

    def attempt(kept: set) -> Attempt:
        report = write(kept)
        per_sample, got = run(list(range(len(feeds))))
        drop, passed = measure(ref, got, accept)
        return Attempt(report, drop, [lr.name for lr in report.quantized], passed, per_sample)

    solo: dict = {}  # layer -> output drop with that layer alone int8, on the first round's worst samples

    def rank(a: Attempt) -> list[str]:
        """The most harmful first: by the output drop each layer causes alone in int8 (measured once, on the
        first failed round's worst samples; the gate's drop where a gate is given, as the rounds are judged),
        then by its own int8 output's agreement with fp32."""
        mine = {lr.name: (lr.cosines.get(lr.chosen, 1.0) if lr.cosines else 1.0) for lr in a.result.quantized}
        if not solo:
            worst = sorted(range(len(feeds)), key=lambda i: -a.per_sample[i])[:SOLO_SAMPLES]
            for name in mine:
                write(set(keep) | set(mine) - {name})
                solo[name] = measure([ref[i] for i in worst], run(worst)[1], accept)[0]
        return sorted(mine, key=lambda n: (-solo.get(n, 0.0), mine[n]))

    if speed_profile:
        write(set(keep))
        speeds = {s.name: s for s in layer_speeds(param, binf, out_param, out_bin, feeds[0])}
        for name in slower_in_int8(list(speeds.values()), min_share=SPEED_MIN_SHARE):
            s = speeds[name]
            keep[name] = f"slower in int8 than fp32 when timed alone ({s.int8_ms:.3f} ms vs {s.fp32_ms:.3f} ms)"
    r = within_budget(attempt, rank, max_drop, keep)
    return FallbackReport(r.result, r.drop, r.rounds, r.keep)
