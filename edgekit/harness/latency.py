"""Latency measurement: statistics, the interleaved timing loop, and process memory.

The timing loop takes plain callables, so the same code times an edgekit Runner, a backend driven through
its own Python API (benchmarks/runner_overhead.py) or anything else, and tests can drive it with a fake clock.

How a measurement goes (see docs/bench.md, "Benchmarking methodology"):
  1. warm-up: each subject, in shuffled order, runs `warmup` untimed calls; their times size the blocks;
  2. rounds: each round visits every subject still measuring, in a new shuffled order; a visit is a pause of
     `settle_ms` (so worker threads a previous backend left spinning, e.g. ncnn/OpenMP or ONNX Runtime's pool,
     have gone idle and cannot steal CPU from this one), `block_warmup` untimed calls (so every backend
     starts its block with its own threads awake), then a block of back-to-back timed calls lasting about
     `block_seconds`; `gap_ms` > 0 idles between calls to model sporadic inference (a camera at a fixed rate);
  3. a subject stops when it has at least `iterations` samples and `min_seconds` of timed calls (or at
     `max_seconds` of timed calls, if set); the others go on.
Every sample is one call, timed with `time.perf_counter` around the call alone.
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

# ---------------------------------------------------------------- statistics

@dataclass
class Stats:
    """Steady-state statistics of one subject, in milliseconds (throughput in inferences per second)."""

    n: int
    min: float
    median: float
    mean: float
    p90: float
    p99: float
    max: float
    std: float  # sample standard deviation (ddof=1)
    cv: float  # coefficient of variation: std / mean
    throughput: float  # sequential inferences per second: n / sum of the samples
    median_ci95: tuple  # distribution-free 95% confidence interval of the median (order statistics)
    total_s: float  # sum of the timed samples, seconds

    def to_dict(self) -> dict:
        d = asdict(self)
        d["median_ci95"] = list(self.median_ci95)
        return d


def percentile(sorted_values, q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation between closest ranks
    (numpy's default 'linear' method: rank = q/100 * (n-1))."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no samples")
    rank = q / 100.0 * (n - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def median_ci(sorted_values, z: float = 1.959964) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: the order statistics at ranks
    n/2 -/+ z*sqrt(n)/2 (normal approximation of the binomial); exact enough from n ~ 10 on."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no samples")
    half = z * math.sqrt(n) / 2.0
    lo = max(0, int(math.floor(n / 2.0 - half)))
    hi = min(n - 1, int(math.ceil(n / 2.0 + half)) - 1)
    return float(sorted_values[lo]), float(sorted_values[max(lo, hi)])


def summarize(samples_s) -> Stats:
    """Statistics of timed samples given in seconds; the result is in milliseconds."""
    s = np.sort(np.asarray(samples_s, dtype=np.float64)) * 1e3
    n = len(s)
    if n == 0:
        raise ValueError("no samples to summarize")
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if n > 1 else 0.0
    total_ms = float(s.sum())
    return Stats(n=n, min=float(s[0]), median=percentile(s, 50), mean=mean, p90=percentile(s, 90),
                 p99=percentile(s, 99), max=float(s[-1]), std=std, cv=std / mean if mean > 0 else 0.0,
                 throughput=n / (total_ms / 1e3) if total_ms > 0 else float("inf"),
                 median_ci95=median_ci(s), total_s=total_ms / 1e3)


# ---------------------------------------------------------------- the timing loop

@dataclass
class TimingPlan:
    warmup: int = 10  # untimed calls per subject before the first round
    iterations: int = 50  # at least this many timed calls per subject ...
    min_seconds: float = 2.0  # ... and at least this much timed time per subject
    max_seconds: float | None = None  # stop a subject at this much timed time even if `iterations` is not reached
    block_seconds: float = 0.1  # length of one block of back-to-back timed calls
    settle_ms: float = 50.0  # idle pause before each block (longer than any backend's spin-wait after a run)
    block_warmup: int = 1  # untimed calls at the start of each block
    gap_ms: float = 0.0  # idle time between timed calls (0: back-to-back)
    seed: int = 0  # seed of the shuffled visiting order
    max_block: int = 1000  # at most this many calls per block

    def validate(self) -> None:
        from ..errors import EdgekitError

        if self.warmup < 0 or self.iterations < 1 or self.min_seconds < 0 or self.block_warmup < 0:
            raise EdgekitError("warmup must be >= 0, iterations >= 1, min-seconds >= 0")
        if self.settle_ms < 0 or self.gap_ms < 0 or self.block_seconds <= 0:
            raise EdgekitError("settle and gap must be >= 0 ms, block length > 0 s")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise EdgekitError("max-seconds must be > 0")


@dataclass
class Measurement:
    name: str
    samples: list = field(default_factory=list)  # seconds, in the order taken
    warmup: list = field(default_factory=list)  # seconds, the untimed warm-up calls (kept for the record)
    blocks: int = 0

    @property
    def timed(self) -> float:
        return float(sum(self.samples))


def block_size(per_call_s: float, plan: TimingPlan) -> int:
    if per_call_s <= 0 or not math.isfinite(per_call_s):
        return 1  # nothing known yet (no warm-up): one call, then size from what it took
    return int(min(plan.max_block, max(1, round(plan.block_seconds / per_call_s))))


def measure(subjects: dict[str, Callable[[], object]], plan: TimingPlan | None = None,
            clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
            progress: Callable[[str], None] | None = None) -> tuple[dict[str, Measurement], list]:
    """Time every subject interleaved (round-robin in a freshly shuffled order each round).

    Returns ({name: Measurement}, schedule) where schedule lists (round, name, timed calls) per block."""
    plan = plan or TimingPlan()
    plan.validate()
    if not subjects:
        return {}, []
    rng = np.random.default_rng(plan.seed)
    names = list(subjects)
    res = {n: Measurement(n) for n in names}
    estimate = {}
    for name in [names[i] for i in rng.permutation(len(names))]:
        call = subjects[name]
        for _ in range(plan.warmup):
            t0 = clock()
            call()
            res[name].warmup.append(clock() - t0)
        w = res[name].warmup
        estimate[name] = float(np.median(w[len(w) // 2:])) if w else 0.0

    def done(m: Measurement) -> bool:
        if plan.max_seconds is not None and m.timed >= plan.max_seconds:
            return True
        return len(m.samples) >= plan.iterations and m.timed >= plan.min_seconds

    schedule = []
    rnd = 0
    active = list(names)
    while active:
        order = [active[i] for i in rng.permutation(len(active))]
        for name in order:
            m, call = res[name], subjects[name]
            per_call = float(np.median(m.samples)) if m.samples else estimate[name]
            k = block_size(per_call, plan)
            # do not overshoot the iteration target by more than one block's worth when time is already enough
            if m.timed >= plan.min_seconds:
                k = max(1, min(k, plan.iterations - len(m.samples)))
            if plan.settle_ms and len(names) > 1:
                sleep(plan.settle_ms / 1e3)
            for _ in range(plan.block_warmup):
                call()
            for _ in range(k):
                t0 = clock()
                call()
                m.samples.append(clock() - t0)
                if plan.gap_ms:
                    sleep(plan.gap_ms / 1e3)
                if plan.max_seconds is not None and m.timed >= plan.max_seconds:
                    break
            m.blocks += 1
            schedule.append((rnd, name, k))
        active = [n for n in active if not done(res[n])]
        rnd += 1
        if progress:
            progress(f"round {rnd}: " + ", ".join(f"{n} {len(res[n].samples)}" for n in names))
    return res, schedule


# ---------------------------------------------------------------- memory

_KB = re.compile(r"(VmHWM|VmRSS):\s+(\d+)\s+kB")


def _status() -> dict:
    try:
        with open("/proc/self/status") as f:
            return {k: int(v) * 1024 for k, v in _KB.findall(f.read())}
    except OSError:
        return {}


def rss_bytes() -> int:
    s = _status()
    if "VmRSS" in s:
        return s["VmRSS"]
    import psutil

    return psutil.Process().memory_info().rss


class PeakRss:
    """Peak resident memory of this process over a region.

    Linux: the kernel's high-water mark (VmHWM), reset at the start by writing 5 to /proc/self/clear_refs, so
    nothing is missed between samples. Elsewhere (or where the reset is refused): a psutil sampling thread."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.method = ""
        self.start_rss = 0
        self.peak = 0
        self._thread = None
        self._stop = None

    def __enter__(self):
        import gc

        gc.collect()
        self.start_rss = rss_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM (kernel high-water mark, reset via /proc/self/clear_refs)"
        except OSError:
            import threading

            import psutil

            self.method = f"psutil RSS sampled every {self.interval_s * 1e3:.0f} ms"
            self._stop = threading.Event()
            proc = psutil.Process()
            self.peak = self.start_rss

            def sample():
                while not self._stop.is_set():
                    self.peak = max(self.peak, proc.memory_info().rss)
                    self._stop.wait(self.interval_s)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        else:
            self.peak = max(_status().get("VmHWM", 0), rss_bytes())
        return False

    @property
    def added(self) -> int:
        return max(0, self.peak - self.start_rss)


# ---------------------------------------------------------------- environment

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def environment() -> dict:
    import platform

    import psutil

    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "physical_cpus": psutil.cpu_count(logical=False),
            "cpu_affinity": affinity, "load_average_1_5_15": load,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "machine": platform.machine()}


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
