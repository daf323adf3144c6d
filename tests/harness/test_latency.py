"""The latency harness: statistics on synthetic timings and the interleaved loop driven by a fake clock.
No timing assertions: everything here is deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.harness import latency
from edgekit.harness.latency import TimingPlan


def test_summarize_known_values():
    samples_s = np.arange(1, 101) / 1e3  # 1..100 ms
    s = latency.summarize(samples_s)
    ms = np.arange(1, 101, dtype=float)
    assert s.n == 100
    assert s.min == pytest.approx(1.0) and s.max == pytest.approx(100.0)
    assert s.median == pytest.approx(50.5)
    assert s.mean == pytest.approx(50.5)
    assert s.p90 == pytest.approx(np.percentile(ms, 90)) == pytest.approx(90.1)
    assert s.p99 == pytest.approx(np.percentile(ms, 99)) == pytest.approx(99.01)
    assert s.std == pytest.approx(np.std(ms, ddof=1))
    assert s.cv == pytest.approx(np.std(ms, ddof=1) / 50.5)
    assert s.throughput == pytest.approx(100 / 5.050)
    assert s.total_s == pytest.approx(5.050)
    lo, hi = s.median_ci95
    assert lo <= s.median <= hi
    assert (lo, hi) == (41.0, 60.0)  # ranks 40 and 59 (0-based) for n = 100


def test_summarize_order_does_not_matter_and_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 0.5, 1001) / 1e3
    a, b = latency.summarize(x), latency.summarize(x[::-1])
    assert a == b
    for q, v in ((50, a.median), (90, a.p90), (99, a.p99)):
        assert v == pytest.approx(np.percentile(x * 1e3, q))


def test_summarize_single_and_constant_samples():
    s = latency.summarize([0.002])
    assert (s.min, s.median, s.max, s.std, s.cv, s.n) == (2.0, 2.0, 2.0, 0.0, 0.0, 1)
    s = latency.summarize([0.001] * 10)
    assert s.std == 0.0 and s.cv == 0.0 and s.median_ci95 == (1.0, 1.0)
    with pytest.raises(ValueError):
        latency.summarize([])


def test_median_ci_is_ordered_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        x = np.sort(rng.normal(10, 1, n))
        lo, hi = latency.median_ci(x)
        assert lo <= np.median(x) <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]


class FakeClock:
    """A clock that only moves when a subject 'runs' or the harness sleeps."""

    def __init__(self):
        self.t = 0.0
        self.sleeps = []
        self.log = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s

    def subject(self, name, durations):
        it = iter(durations)

        def call():
            self.log.append(name)
            self.t += next(it)

        return call


def _durations(base, n=100000, seed=0):
    rng = np.random.default_rng(seed)
    return list(base * (1 + 0.1 * rng.random(n)))


def test_measure_interleaves_and_meets_both_stopping_rules():
    clock = FakeClock()
    subjects = {"a": clock.subject("a", _durations(0.001, seed=1)), "b": clock.subject("b", _durations(0.004, seed=2)),
                "c": clock.subject("c", _durations(0.010, seed=3))}
    plan = TimingPlan(warmup=3, iterations=40, min_seconds=0.5, block_seconds=0.05, settle_ms=20, block_warmup=1,
                      seed=7)
    res, schedule = latency.measure(subjects, plan, clock=clock, sleep=clock.sleep)
    for name, m in res.items():
        assert len(m.samples) >= 40 and m.timed >= 0.5, name
        assert len(m.warmup) == 3
        calls = clock.log.count(name)
        assert calls == len(m.warmup) + m.blocks * plan.block_warmup + len(m.samples)
    # the samples are exactly the durations of the timed calls: a's are all within [1, 1.1] ms
    assert all(0.001 <= s <= 0.0011 + 1e-12 for s in res["a"].samples)
    # every round visits each still-active subject once; the first rounds visit all three in a shuffled order
    rounds = {}
    for rnd, name, k in schedule:
        rounds.setdefault(rnd, []).append(name)
        assert k >= 1
    orders = [tuple(v) for v in rounds.values() if len(v) == 3]
    assert len(orders) >= 3 and len(set(orders)) > 1
    assert all(sorted(o) == ["a", "b", "c"] for o in orders)
    # one settle pause per block
    assert clock.sleeps.count(0.02) == len(schedule)
    # blocks are sized to ~block_seconds: a (1 ms) gets ~50 calls per block, c (10 ms) ~5
    first = {name: k for rnd, name, k in schedule if rnd == 0}
    assert 40 <= first["a"] <= 50 and 4 <= first["c"] <= 5


def test_measure_is_reproducible_with_a_seed():
    def run(seed):
        clock = FakeClock()
        subjects = {n: clock.subject(n, _durations(0.002)) for n in "abcd"}
        _, schedule = latency.measure(subjects, TimingPlan(warmup=1, iterations=30, min_seconds=0.2, seed=seed),
                                      clock=clock, sleep=clock.sleep)
        return schedule

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_measure_max_seconds_and_gap():
    clock = FakeClock()
    # binary fractions, so that the fake clock's sums are exact
    plan = TimingPlan(warmup=0, iterations=10**6, min_seconds=0, max_seconds=0.375, gap_ms=7.8125, settle_ms=0)
    res, _ = latency.measure({"slow": clock.subject("slow", [0.125] * 100)}, plan, clock=clock, sleep=clock.sleep)
    assert res["slow"].samples == [0.125] * 3  # stopped by max_seconds
    assert clock.sleeps == [0.0078125] * 3  # one gap after every timed call, no settle for a single subject


def test_plan_validation():
    for bad in (dict(iterations=0), dict(warmup=-1), dict(min_seconds=-1), dict(settle_ms=-1), dict(max_seconds=0)):
        with pytest.raises(EdgekitError):
            TimingPlan(**bad).validate()


def test_peak_rss_sees_an_allocation():
    with latency.PeakRss() as mem:
        block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
        del block
    assert mem.added >= 48 * 2**20
    assert mem.method


def test_environment_and_threads():
    env = latency.environment()
    assert env["logical_cpus"] >= 1 and env["cpu"]
    assert latency.default_threads() >= 1
