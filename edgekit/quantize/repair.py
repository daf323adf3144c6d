"""The accuracy-budget loop every int8 quantizer shares: quantize with some layers kept float, measure the drop
(the export gate's own, `compare.Verdict.drop`: by its task metric where one is named, so the best round is
the best by what the gate judges; else the worst output cosine), and move the most harmful quantized layers
back to float until the drop is within the budget (as NNCF's accuracy control does), or the rounds run out
(then the best round's drop is reported and the caller's gate refuses).

Each round keeps a tenth of the still-quantized layers (at least one) more in float, most harmful first by the
quantizer's own ranking; ROUNDS bounds the cost (each round is one quantization and one measurement)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

ROUNDS = 8


@dataclass
class Attempt:
    """One round's result: what the quantizer made, its drop, and the layers it quantized."""

    result: Any
    drop: float  # the gate's own drop (by its task metric) where the caller gave a gate, else the cosine drop
    quantized: list[str]
    passed: bool | None = None  # the export gate's verdict where the caller gave one, else drop <= max_drop
    per_sample: list[float] | None = None  # the cosine drop on each calibration sample, where measured


@dataclass
class Repaired:
    result: Any  # the last round's quantizer result (its files are the ones written)
    drop: float
    keep: dict  # layer -> why it stayed float
    rounds: list[dict] = field(default_factory=list)  # per round: layers kept float, quantized, drop


def within_budget(attempt: Callable[[set], Attempt], rank: Callable[[Attempt], list[str]], max_drop: float,
                  keep: dict | None = None, rounds: int = ROUNDS) -> Repaired:
    """Run `attempt(kept_float_names)` until its drop is <= max_drop; between rounds the first tenth of
    `rank(attempt)` (quantized layers, most harmful first) joins the float set. When no round passes, the
    round with the least drop is redone (the quantizers are deterministic) so that its files are the ones left:
    the best reachable drop, which the caller's gate then reports."""
    keep = dict(keep or {})
    history = []
    best: tuple[float, dict] | None = None
    while True:
        a = attempt(set(keep))
        history.append({"kept_float": len(keep), "quantized": len(a.quantized), "drop": round(float(a.drop), 6)})
        if a.per_sample and a.passed is not None:  # a task metric judged: the cosine drop beside it
            history[-1]["cosine_drop"] = round(float(max(a.per_sample)), 6)
        ok = a.passed if a.passed is not None else a.drop <= max_drop
        history[-1]["passed"] = bool(ok)
        if best is None or a.drop < best[0]:
            best = (a.drop, dict(keep))
        done = ok or len(history) >= rounds
        ranked = [] if done else [n for n in rank(a) if n not in keep and n in set(a.quantized)]  # rank may be dear
        if done or not ranked:
            if not ok and best[0] < a.drop:
                keep = best[1]
                a = attempt(set(keep))
                history.append({"kept_float": len(keep), "quantized": len(a.quantized),
                                "drop": round(float(a.drop), 6),
                                "passed": bool(a.passed if a.passed is not None else a.drop <= max_drop),
                                "best_redone": True})
            return Repaired(a.result, float(a.drop), keep, history)
        for name in ranked[:max(1, len(ranked) // 10)]:
            keep[name] = f"round {len(history)}: among the most harmful layers (drop {a.drop:.4f}, gate failed)"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def worst_drop(reference: list[dict], got: list[dict]) -> float:
    """1 - the worst output cosine over samples and outputs (what the gate compares with max_drop)."""
    return max(1 - cosine(r[k], g[k]) for r, g in zip(reference, got) for k in r)


def measure(reference: list[dict], got: list[dict], accept=None) -> tuple[float, bool | None]:
    """The drop and the export gate's verdict when `accept` (ConvertOptions.accept, a compare.Verdict) is given:
    the gate's own drop (by its task metric where one is named); else the worst cosine drop and None."""
    if accept is None:
        return worst_drop(reference, got), None
    verdict = accept(reference, got)
    drop = getattr(verdict, "drop", None)  # a gate that gives only a bool: the worst cosine drop
    return (worst_drop(reference, got) if drop is None else float(drop)), bool(verdict)


def summary(method: str, samples: int, layers_int8: int, repaired: Repaired, fp32_bytes: int, int8_bytes: int,
            **extra) -> dict:
    """The manifest's `precision.quantization`, one shape for every format (ncnn's keys, plus why each layer
    stayed float)."""
    return {"method": method, "calibration_samples": samples, "layers_int8": layers_int8,
            "layers_kept_float": sorted(repaired.keep), "kept_float_why": dict(sorted(repaired.keep.items())),
            "calibration_drop": round(repaired.drop, 6), "rounds": repaired.rounds,
            "size_ratio": round(int8_bytes / fp32_bytes, 4) if fp32_bytes else None, **extra}
