"""Compare a backend's outputs with the reference: error metrics per output and a verdict.

Tolerances depend on the precision that will be deployed: fp32 tight, fp16 looser, int8 loosest. An output
passes when its cosine similarity reaches `cos` and its max abs error stays within atol + rtol * max|ref|."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..manifest import OutputCheck

DEFAULT_TOLERANCES = {
    "fp32": {"cos": 0.999, "atol": 1e-4, "rtol": 1e-2},
    "fp16": {"cos": 0.99, "atol": 1e-3, "rtol": 5e-2},
    "int8": {"cos": 0.95, "atol": 1e-2, "rtol": 2e-1},
}


@dataclass
class Metrics:
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    ref_max: float


def metrics(ref: np.ndarray, out: np.ndarray) -> Metrics:
    r = np.asarray(ref, dtype=np.float64).ravel()
    o = np.asarray(out, dtype=np.float64).ravel()
    if r.shape != o.shape:
        raise ValueError(f"shapes differ: reference {np.shape(ref)}, backend {np.shape(out)}")
    if not np.all(np.isfinite(o)):
        return Metrics(float("inf"), float("inf"), float("inf"), -1.0, float(np.max(np.abs(r), initial=0)))
    diff = np.abs(r - o)
    nr, no = np.linalg.norm(r), np.linalg.norm(o)
    if nr == 0 and no == 0:
        cos = 1.0
    elif nr == 0 or no == 0:
        cos = 0.0
    else:
        cos = float(np.dot(r, o) / (nr * no))
    ref_max = float(np.max(np.abs(r), initial=0.0))
    return Metrics(float(diff.max(initial=0.0)), float(diff.max(initial=0.0) / max(ref_max, 1e-12)),
                   float(diff.mean()) if diff.size else 0.0, cos, ref_max)


def passes(m: Metrics, tol: dict) -> bool:
    return m.cosine >= tol["cos"] and m.max_abs <= tol["atol"] + tol["rtol"] * m.ref_max


def check_outputs(refs: list[dict], outs: list[dict], tol: dict) -> list[OutputCheck]:
    """Worst case over samples, per output."""
    checks = []
    for name in refs[0]:
        worst = None
        for ref, out in zip(refs, outs):
            m = metrics(ref[name], out[name])
            if worst is None:
                worst = m
            else:
                worst = Metrics(max(worst.max_abs, m.max_abs), max(worst.max_rel, m.max_rel),
                                max(worst.mean_abs, m.mean_abs), min(worst.cosine, m.cosine),
                                max(worst.ref_max, m.ref_max))
        checks.append(OutputCheck(name, list(np.shape(refs[0][name])), worst.max_abs, worst.max_rel,
                                  worst.mean_abs, worst.cosine, passes(worst, tol)))
    return checks
