"""Compare a backend's outputs with the reference: error metrics per output and a verdict.

Tolerances depend on the precision that will be deployed: fp32 tight, fp16 looser, int8 loosest. An output
passes when its cosine similarity reaches `cos`, the error that 99.9% of its elements stay within (`p999_abs`)
is at most atol + rtol * max|ref|, and, for class scores, the rows keep their top-1 class (all of them when
there are fewer than 100 rows, as a classifier's single row; 99% of a recogniser's time steps at fp32).

Why the 99.9th percentile and not the maximum: a dense output (a detection or segmentation map of 10^5 values)
judged by its single worst element gets a verdict that depends on which inputs were used (one pixel 0.006 off
on a 0..1 map refuses an artifact whose map is otherwise within 1e-6, and another honest input set accepts
it). For outputs under 1000 elements the percentile is the maximum, so small outputs keep the strict rule. The
max abs error is still measured and reported.

Task metrics (`METRICS`): at fp16/int8 the drop can be judged by what the deployment measures instead of the
whole output's cosine: `top1` (argmax agreement of class-score rows: a classifier), `ctc` / `ctc@B` (a CTC
recogniser's [N, T, C] scores, greedy-decoded as its app decodes them (argmax per step, repeats merged, blank B,
default 0, dropped) and scored by character agreement with the reference's decoding: 1 - edit distance / the
reference's length, pooled; the per-step top-1 also counts the blank steps and the near-ties between a
character's steps that decode to the same text, so it refuses int8 recognisers that read exactly what fp32
reads), `mask@T` (IoU of the output thresholded at T: a segmentation or DB probability map) or
`boxes@SCORES>T` (a detector's box regressor [.., A, 4+] coded as centre offset and size, the MediaPipe
BlazeFace/BlazePalm family: the mean IoU of the boxes of every row whose reference score in output SCORES is
above T; the anchor offset and the pixel scale are common to both runs, so the IoU needs neither, and a
detector whose boxes drift is refused even when the regressor's cosine, dominated by the rows that never fire,
stays high; exp-coded sizes (TF Object Detection SSDs) are not this family). Such an output passes
when the metric, pooled over all samples as a task metric is measured over a test set, is >= 1 - max_drop
(`cosine` named as the metric: the worst sample's cosine alone, without the error rule, for outputs such as box
regressors in pixels whose absolute error says little); its cosine and errors are still measured and reported.
Which metric applies is said per output kind by the caller (`parse_metric`), never from a model's name."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..manifest import OutputCheck
from .task_metrics import edit_distance

# top1: the fraction of class-score rows (e.g. a recogniser's time steps) that must keep their argmax
DEFAULT_TOLERANCES = {
    "fp32": {"cos": 0.999, "atol": 1e-4, "rtol": 1e-2, "top1": 0.99},
    "fp16": {"cos": 0.99, "atol": 1e-3, "rtol": 5e-2, "top1": 0.98},
    "int8": {"cos": 0.95, "atol": 1e-2, "rtol": 2e-1, "top1": 0.95},
}


@dataclass
class Metrics:
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    ref_max: float
    p999_abs: float = 0.0  # the 99.9th percentile of the absolute error (the maximum below 1000 elements)
    top1: float | None = None  # class-score outputs: fraction of rows whose argmax agrees


def metrics(ref: np.ndarray, out: np.ndarray) -> Metrics:
    r = np.asarray(ref, dtype=np.float64).ravel()
    o = np.asarray(out, dtype=np.float64).ravel()
    if r.shape != o.shape:
        raise ValueError(f"shapes differ: reference {np.shape(ref)}, backend {np.shape(out)}")
    if not np.all(np.isfinite(o)):
        inf = float("inf")
        return Metrics(inf, inf, inf, -1.0, float(np.max(np.abs(r), initial=0)), inf)
    diff = np.abs(r - o)
    nr, no = np.linalg.norm(r), np.linalg.norm(o)
    if nr == 0 and no == 0:
        cos = 1.0
    elif nr == 0 or no == 0:
        cos = 0.0
    else:
        cos = float(np.dot(r, o) / (nr * no))
    ref_max = float(np.max(np.abs(r), initial=0.0))
    top1 = None
    shape = list(np.shape(ref))
    if is_class_scores(shape):
        top1 = class_agreement(np.asarray(ref), np.asarray(out))[0]
    return Metrics(float(diff.max(initial=0.0)), float(diff.max(initial=0.0) / max(ref_max, 1e-12)),
                   float(diff.mean()) if diff.size else 0.0, cos, ref_max, p999(diff), top1)


def p999(diff: np.ndarray) -> float:
    """The error 99.9% of elements stay within: the k-th largest error with k = size/1000 (the maximum when
    the output has fewer than 1000 elements)."""
    if diff.size == 0:
        return 0.0
    k = diff.size // 1000
    return float(np.partition(diff, diff.size - 1 - k)[diff.size - 1 - k])


METRICS = ("cosine", "top1", "ctc", "mask@T", "boxes@SCORES>T")


def parse_metric(spec, outputs: dict[str, list]) -> dict[str, str]:
    """`metric` as given ("top1", ["maps=mask@0.3", "cosine"], {"maps": "mask@0.3"}) -> {output name or "*":
    kind}, checked against the outputs (name -> shape). Raises EdgekitError naming the bad value."""
    from ..errors import EdgekitError
    from ..options import spell

    if spec is None or spec == [] or spec == {}:
        return {}
    items = spec if isinstance(spec, dict) else dict(
        (s.split("=", 1) if "=" in s else ("*", s)) for s in ([spec] if isinstance(spec, str) else spec))
    out = {}
    for name, kind in items.items():
        kind = str(kind).strip()
        if name != "*" and name not in outputs:
            raise EdgekitError(f"{spell('metric', f'{name}={kind}')}: the model has no output '{name}'; its "
                               f"outputs: {', '.join(outputs)}")
        if kind.startswith("mask@"):
            try:
                t = float(kind[5:])
            except ValueError:
                t = math.nan
            if not math.isfinite(t):
                raise EdgekitError(f"{spell('metric', kind)}: mask@T takes a number T, the threshold the "
                                   "output is cut at (e.g. mask@0.3 for a probability map)")
        elif kind.startswith("boxes@"):
            _boxes_spec(name, kind, outputs)
        elif kind.startswith("ctc"):
            if kind != "ctc" and not (kind.startswith("ctc@") and kind[4:].isdigit()):
                raise EdgekitError(f"{spell('metric', kind)}: ctc@B takes the blank class index B (ctc alone: "
                                   "blank 0)")
            for n in ([name] if name != "*" else list(outputs)):
                if len(outputs[n]) != 3 or not is_class_scores(list(outputs[n])):
                    raise EdgekitError(f"{spell('metric', f'{n}={kind}')}: output '{n}' {list(outputs[n])} is not "
                                       "a CTC recogniser's [N, T, C] scores")
        elif kind not in ("cosine", "top1"):
            raise EdgekitError(f"{spell('metric', kind)}: unknown metric; use one of {', '.join(METRICS)} "
                               "(OUTPUT=KIND for one output)")
        if kind == "top1":
            for n in ([name] if name != "*" else list(outputs)):
                if not is_class_scores(list(outputs[n])):
                    raise EdgekitError(f"{spell('metric', f'{n}=top1')}: output '{n}' {list(outputs[n])} is not "
                                       "class scores along its last axis ([N, C] or [N, T, C]); use cosine or mask@T")
        out[name] = kind
    return out


def _boxes_spec(name: str, kind: str, outputs: dict[str, list]) -> tuple[str, float]:
    """`boxes@SCORES>T` for output `name` -> (SCORES, T), checked against the outputs' shapes."""
    from ..errors import EdgekitError
    from ..options import spell

    scores, _, t = kind[6:].partition(">")
    try:
        t = float(t or 0)
    except ValueError:
        t = math.nan
    if name == "*" or scores not in outputs or not math.isfinite(t):
        raise EdgekitError(f"{spell('metric', f'{name}={kind}')}: give it as BOXES=boxes@SCORES>T, the box output "
                           f"and the score output whose rows above T are judged (e.g. "
                           f"regressors=boxes@classificators>0); the outputs: {', '.join(outputs)}")
    b, s = list(outputs[name]), list(outputs[scores])
    if len(b) < 2 or len(s) < 2 or b[-1] < 4 or b[:-1] != s[:-1]:
        raise EdgekitError(f"{spell('metric', f'{name}={kind}')}: output '{name}' {b} must be boxes [.., A, 4+] "
                           f"row for row with the scores '{scores}' {s} [.., A, C]")
    return scores, t


def box_agreement(kind: str, name: str, refs: list[dict], outs: list[dict]) -> float:
    """`boxes@SCORES>T`: the mean IoU, pooled over the samples, of output `name`'s centre-size boxes (the first 4
    values of each row) on the rows whose reference score is above T; 1 when no row fires."""
    scores, _, t = kind[6:].partition(">")
    t = float(t or 0)
    ious = []
    for r, o in zip(refs, outs):
        ref, out = (np.asarray(x[name], np.float64) for x in (r, o))
        rows = np.asarray(r[scores]).reshape(-1, np.shape(r[scores])[-1]).max(axis=1) > t
        a, b = ref.reshape(-1, ref.shape[-1])[rows, :4], out.reshape(-1, ref.shape[-1])[rows, :4]
        lo = np.maximum(a[:, :2] - a[:, 2:] / 2, b[:, :2] - b[:, 2:] / 2)
        hi = np.minimum(a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2)
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        union = np.prod(np.abs(a[:, 2:]), axis=1) + np.prod(np.abs(b[:, 2:]), axis=1) - inter
        ious.append(np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0))
    pooled = np.concatenate(ious) if ious else np.zeros(0)
    return float(pooled.mean()) if pooled.size else 1.0


def task_metric(kind: str, refs: list, outs: list) -> float:
    """The task metric over all samples together (pooled, as a test set's accuracy is): `top1` the share of
    rows keeping their argmax, `mask@T` the IoU of the two outputs thresholded at T (1 when both are empty)."""
    if kind == "top1":
        r = np.concatenate([np.asarray(x).reshape(-1, np.shape(x)[-1]) for x in refs])
        o = np.concatenate([np.asarray(x).reshape(-1, np.shape(x)[-1]) for x in outs])
        return float(np.mean(np.argmax(r, -1) == np.argmax(o, -1)))
    if kind.startswith("ctc"):
        blank = int(kind[4:] or 0)
        errors = chars = 0
        for r, o in zip(refs, outs):
            r, o = np.asarray(r), np.asarray(o)
            for a, b in zip(r.reshape(-1, *r.shape[-2:]), o.reshape(-1, *o.shape[-2:])):
                want, got = ctc_greedy(a, blank), ctc_greedy(b, blank)
                errors, chars = errors + edit_distance(got, want), chars + len(want)
        return 1.0 - errors / chars if chars else float(errors == 0)
    t = float(kind[5:])
    inter = union = 0
    for r, o in zip(refs, outs):
        a, b = np.asarray(r) > t, np.asarray(o) > t
        inter += int(np.count_nonzero(a & b))
        union += int(np.count_nonzero(a | b))
    return inter / union if union else 1.0


def ctc_greedy(scores: np.ndarray, blank: int = 0) -> list[int]:
    """A CTC recogniser's [T, C] scores -> class ids: argmax per step, repeats merged, blanks dropped."""
    ids = np.argmax(scores, -1)
    keep = np.ones(len(ids), bool)
    keep[1:] = ids[1:] != ids[:-1]
    return [int(i) for i in ids[keep & (ids != blank)]]


def passes(m: Metrics, tol: dict) -> bool:
    return (m.cosine >= tol["cos"] and m.p999_abs <= tol["atol"] + tol["rtol"] * m.ref_max
            and (m.top1 is None or m.top1 >= tol.get("top1", 1.0)))


@dataclass
class OutputReport(OutputCheck):
    """OutputCheck (what the manifest keeps) plus what `edgekit check` reports."""

    snr_db: float = math.inf
    psnr_db: float = math.inf
    top1: float | None = None  # class-score outputs: fraction of rows whose argmax agrees
    top5: float | None = None  # class-score outputs: mean overlap of the top-5 sets
    tolerance: dict = field(default_factory=dict)
    needs_atol: float = 0.0  # the smallest atol that would pass with rtol = 0
    needs_rtol: float = 0.0  # the smallest rtol that would pass with atol = 0
    mean_cosine: float = 1.0


def tolerance_for(output: str, tol: dict) -> dict:
    """`tol` is flat ({cos, atol, rtol}) or per output ({default: {...}, atol: {NAME or '*': v}, ...}); other keys
    (a `basis` saying why) are not thresholds. `metric` ({NAME or '*': kind}) resolves to this output's kind."""
    t = dict(tol if "default" not in tol else tol["default"])
    if "default" in tol:
        for key in ("atol", "rtol", "cos", "top1", "metric"):
            over = tol.get(key) or {}
            if output in over:
                t[key] = over[output]
            elif "*" in over:
                t[key] = over["*"]
    if isinstance(t.get("metric"), dict):
        t["metric"] = t["metric"].get(output, t["metric"].get("*"))
    return t


def is_class_scores(shape: list) -> bool:
    """[N, C] or [N, T, C] with C classes along the last axis (not a spatial map, not a single value)."""
    return len(shape) in (2, 3) and 2 <= shape[-1] <= 100_000


def class_agreement(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    r = ref.reshape(-1, ref.shape[-1])
    o = out.reshape(-1, out.shape[-1])
    top1 = float(np.mean(np.argmax(r, -1) == np.argmax(o, -1)))
    k = min(5, r.shape[-1])
    rk = np.argsort(-r, -1)[:, :k]
    ok = np.argsort(-o, -1)[:, :k]
    top5 = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(rk, ok)]))
    return top1, top5


def _db(signal: float, noise: float, scale: int) -> float:
    """scale * log10(signal / noise), defined for every input (no noise: inf; infinite noise or an overflowing,
    NaN or zero signal: -inf), so outputs that overflow give a number instead of a math domain error."""
    if noise == 0:
        return math.inf
    ratio = signal / noise if math.isfinite(noise) else 0.0
    return scale * math.log10(ratio) if math.isfinite(ratio) and ratio > 0 else -math.inf


def compare_outputs(refs: list[dict], outs: list[dict], tol: dict) -> list[OutputReport]:
    """Per output, over all samples: worst-case errors and cosine, mean cosine, SNR/PSNR, class agreement,
    and the verdict against the output's tolerance."""
    reports = []
    for name in refs[0]:
        per = [metrics(r[name], o[name]) for r, o in zip(refs, outs)]
        ref_all = np.concatenate([np.asarray(r[name], np.float64).ravel() for r in refs])
        out_all = np.concatenate([np.asarray(o[name], np.float64).ravel() for o in outs])
        noise = float(np.sum((ref_all - out_all) ** 2)) if np.all(np.isfinite(out_all)) else math.inf
        signal = float(np.sum(ref_all ** 2))
        snr, rmse = _db(signal, noise, 10), math.sqrt(noise / max(ref_all.size, 1))
        psnr = _db(float(np.max(np.abs(ref_all), initial=0.0)), rmse, 20)
        shape = list(np.shape(refs[0][name]))
        top1 = top5 = None
        if is_class_scores(shape):
            agree = [class_agreement(np.asarray(r[name]), np.asarray(o[name])) for r, o in zip(refs, outs)]
            top1, top5 = float(np.mean([a[0] for a in agree])), float(np.mean([a[1] for a in agree]))
        worst = Metrics(max(m.max_abs for m in per), max(m.max_rel for m in per),
                        float(np.mean([m.mean_abs for m in per])), min(m.cosine for m in per),
                        max(m.ref_max for m in per), max(m.p999_abs for m in per),
                        None if top1 is None else min(m.top1 for m in per))
        t = tolerance_for(name, tol)
        kind, value, drop, ok = t.get("metric"), None, None, passes(worst, t)
        if kind:  # the task metric judges this output, against the budget
            value = (worst.cosine if kind == "cosine" else box_agreement(kind, name, refs, outs)
                     if kind.startswith("boxes@") else task_metric(kind, [r[name] for r in refs],
                                                                   [o[name] for o in outs]))
            drop = 1.0 - value
            ok = value >= t["metric_min"] and math.isfinite(worst.max_abs)
        reports.append(OutputReport(
            name=name, shape=shape, max_abs=worst.max_abs, max_rel=worst.max_rel, mean_abs=worst.mean_abs,
            cosine=worst.cosine, passed=ok, metric=kind, metric_value=value, drop=drop,
            snr_db=snr, psnr_db=psnr, top1=top1, top5=top5,
            p999_abs=worst.p999_abs, tolerance=t, needs_atol=worst.p999_abs,
            needs_rtol=worst.p999_abs / max(worst.ref_max, 1e-12),
            mean_cosine=float(np.mean([m.cosine for m in per]))))
    return reports


class Verdict:
    """The gate's verdict on some samples: truthy when every output passed; `drop` is how far the worst output
    fell by the measure that judged it (its task metric's 1 - value, else 1 - its worst cosine), so a repair loop
    gated by a task metric also picks its best round by that metric."""

    def __init__(self, reports: list[OutputReport]):
        self.passed = all(r.passed for r in reports)
        self.drop = max((r.drop if r.metric else 1.0 - r.cosine for r in reports), default=0.0)

    def __bool__(self) -> bool:
        return self.passed


def quantization_allowance(tol: dict, refs: list[dict], floats: list[dict], k: int, steps: dict | None = None) -> dict:
    """The tolerance for a dynamically quantized source, per output: `tol` widened by what the source's own
    activation quantization does to that output, measured as the gap between the quantized reference (`refs`)
    and its float rewrite on the same runtime and inputs (`floats`: the weights dequantized exactly, so the
    only difference is the rounding of activations to their steps, propagated).

    A backend that runs the float graph (k = 1) is within fp32 tolerance of the float rewrite, so by the
    triangle inequality within that plus the gap of the quantized reference; one that runs quantized ops with
    its own rounding (k = 2) is up to a gap from the float rewrite itself. Per output: atol + k x max|q - f|;
    the cosine threshold moves by k x the angle between q and f (angles obey the triangle inequality); class
    scores may lose k x the rows whose top-1 q and f already disagree on. `basis` says why, with the activation
    steps (`steps`: DynamicQuantizeLinear node -> its largest step) when known."""
    per: dict[str, dict] = {"atol": {}, "cos": {}, "top1": {}}
    gaps = {}
    for name in refs[0]:
        base = tolerance_for(name, tol)
        pairs = [(np.asarray(r[name], np.float64), np.asarray(f[name], np.float64)) for r, f in zip(refs, floats)]
        gap = max(float(np.max(np.abs(r - f), initial=0.0)) for r, f in pairs)
        angle = max(math.acos(min(1.0, max(-1.0, metrics(r, f).cosine))) for r, f in pairs)
        per["atol"][name] = base["atol"] + k * gap
        per["cos"][name] = math.cos(min(math.pi, math.acos(base["cos"]) + k * angle))
        if is_class_scores(list(pairs[0][0].shape)):
            lost = max(1.0 - class_agreement(r, f)[0] for r, f in pairs)
            per["top1"][name] = max(0.0, base.get("top1", 1.0) - k * lost)
        gaps[name] = gap
    default = dict(tol["default"]) if "default" in tol else dict(tol)
    out = {"default": default, **{key: v for key, v in per.items() if v}}
    if "rtol" in tol and "default" in tol:
        out["rtol"] = tol["rtol"]
    where = ", ".join(f"{n} {g:.3g}" for n, g in gaps.items())
    step = f"activations rounded to steps up to {max(steps.values()):.3g} ({len(steps)} DynamicQuantizeLinear)" \
        if steps else "activations rounded by the quantized ops"
    out["basis"] = (f"dynamically quantized source: fp32 tolerance + {k} x its own quantization gap ({step}; the "
                    f"quantized reference differs from its float rewrite by max abs {where} on these inputs)"
                    + (", the backend running the float rewrite" if k == 1 else
                       ", the backend running quantized ops with its own rounding"))
    return out
