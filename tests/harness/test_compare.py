"""The verdict: what matters for deployment, the same on two honest sets of inputs."""
import math

import numpy as np

from edgekit.harness.check import tolerances_for
from edgekit.harness.compare import DEFAULT_TOLERANCES, compare_outputs, metrics, passes

FP32 = DEFAULT_TOLERANCES["fp32"]


def _map(seed=0, size=(1, 1, 160, 160)):
    return np.random.default_rng(seed).uniform(0, 1, size).astype(np.float32)


def test_a_dense_map_is_judged_by_its_bulk_not_its_single_worst_element():
    ref = _map()
    out = ref + np.float32(1e-6)
    out.flat[1234] += 0.05  # one pixel of 25,600 far off (as a kernel's rounding at an edge gives)
    m = metrics(ref, out)
    assert m.max_abs > FP32["atol"] + FP32["rtol"] * m.ref_max  # the old rule refused it
    assert passes(m, FP32) and m.p999_abs < 1e-5
    many = ref.copy()
    many.flat[::500] += 0.05  # 52 pixels (0.2%) off: beyond 0.1%, refused
    assert not passes(metrics(ref, many), FP32)


def test_small_outputs_keep_the_strict_rule():
    ref = np.array([[0.2, 0.8]], np.float32)
    out = ref + np.array([[0.0, 0.02]], np.float32)
    m = metrics(ref, out)
    assert m.p999_abs == m.max_abs and not passes(m, FP32)


def test_class_scores_must_keep_their_top1():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (1, 40, 50)).astype(np.float32)
    swapped = ref.copy()
    row = swapped[0, 3]
    i, j = int(np.argmax(row)), int(np.argsort(row)[-2])
    row[i], row[j] = row[j], row[i]  # one of 40 time steps changes its class: 97.5% < 99%
    m = metrics(ref, swapped)
    assert m.top1 == 39 / 40 and not passes(m, {**FP32, "atol": 1.0})
    assert passes(metrics(ref, ref.copy()), FP32)
    (r,) = compare_outputs([{"p": ref}], [{"p": swapped}], {**FP32, "atol": 1.0})
    assert r.top1 == 39 / 40 and not r.passed and r.p999_abs == 0.0 < r.max_abs  # only the top-1 refuses it


def test_atol_alone_is_the_whole_bound():
    tol = tolerances_for("fp32", atol={"*": 1e-6})
    ref = np.full((1, 10), 100.0, np.float32)
    out = ref + np.float32(1e-3)
    (loose,) = compare_outputs([{"y": ref}], [{"y": out}], tolerances_for("fp32"))
    (tight,) = compare_outputs([{"y": ref}], [{"y": out}], tol)
    assert loose.passed and not tight.passed and tight.tolerance["rtol"] == 0.0
    both = tolerances_for("fp32", atol={"*": 1e-6}, rtol={"*": 1e-2})
    (r,) = compare_outputs([{"y": ref}], [{"y": out}], both)
    assert r.passed and r.tolerance["rtol"] == 1e-2


def test_overflowing_outputs_give_numbers_not_math_errors():
    ref = np.array([[1.0, 2.0]], np.float32)
    out = np.array([[np.inf, np.nan]], np.float32)
    (r,) = compare_outputs([{"y": ref}], [{"y": out}], FP32)
    assert not r.passed and r.snr_db == -math.inf and r.cosine == -1.0
    huge = np.array([[3e38, -3e38]], np.float32)
    (r,) = compare_outputs([{"y": huge}], [{"y": huge * np.float32(0.5)}], FP32)
    assert not r.passed and math.isfinite(r.cosine)
