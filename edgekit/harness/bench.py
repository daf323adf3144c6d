"""Latency of artifacts on every backend, measured the same way: the measuring loop and nothing else.

`bench_artifacts` loads each artifact through the one door (`edgekit.runner.load`), times it interleaved with
the others (`latency.measure`), measures its memory in a fresh child (`memory`), and returns BenchResults
(`results`). The public `edgekit.bench`, which can also export first, is `edgekit.workflows.bench`. The
methodology (what is timed, how spin-waiting worker threads are handled, memory) is METHODOLOGY below,
copied into every JSON report and explained in docs/bench.md."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .. import backends
from ..errors import EdgekitError, ModelError
from ..manifest import Manifest
from ..options import spell
from ..runner import load, open_artifact, read_artifact
from . import inputs as inputs_mod
from . import latency, report
from .latency import TimingPlan
from .memory import memory_in_child
from .results import BenchResult

MAX_CV = 0.25  # above this coefficient of variation a measurement is flagged unstable

METHODOLOGY = {
    "timed_region": "one call of the edgekit runner: runner(feeds) -> outputs, i.e. input checks, copying the "
                    "inputs into the backend (including any layout conversion, e.g. NCHW->NHWC for TFLite), "
                    "inference, and fetching every output back as a numpy array in the ONNX layout. The same "
                    "region on every backend; benchmarks/runner_overhead.py measures what it adds over each "
                    "runtime's own Python API.",
    "clock": "time.perf_counter around each call; every call is one sample",
    "load": "load_s: edgekit.load() (reading, compiling/allocating the model) after the runtime's Python module "
            "was imported; import_s is that one-time import, reported per format",
    "first_inference": "first_inference_s: the first call after load, on the same inputs",
    "warmup": "untimed calls per artifact before the first round; they also size the blocks",
    "interleaving": "round-robin over the artifacts of one thread count, in a new random order each round; each "
                    "visit is one block of back-to-back timed calls (~block_seconds long)",
    "spin_wait": "worker threads of several runtimes spin after a run instead of sleeping (ncnn's OpenMP: "
                 "openmp_blocktime, 20 ms by default with LLVM libomp; the pip ncnn wheel links GNU libgomp, whose "
                 "spin is GOMP_SPINCOUNT-bound, ~10 ms measured here, and ignores openmp_blocktime; ONNX Runtime's "
                 "pool spins too). Inside a block calls are back-to-back, so every backend keeps its threads hot, "
                 "as in a video loop. Before each block the harness idles settle_ms (default 50 ms, longer than "
                 "any of those spins), so a backend's spinning threads never steal CPU from the next backend's "
                 "timed calls, and then makes block_warmup untimed calls so no backend pays its thread wake-up "
                 "inside the timed region. ncnn's openmp_blocktime is left at the artifact's setting (20 ms); "
                 "gap_ms > 0 measures sporadic inference instead, where every backend pays its wake-up.",
    "threads": "the same thread count is given to every backend (ONNX Runtime intra-op threads with inter-op 1, "
               "ncnn num_threads, MNN numThread, LiteRT num_threads, OpenVINO INFERENCE_NUM_THREADS with one stream "
               "and the latency hint); edgekit pins no threads (OpenVINO's CPU plugin pins its own by default, "
               "ENABLE_CPU_PINNING, as benchmark_app does); the process's CPU affinity and load are recorded",
    "statistics": "min, median, mean, p90, p99 (linear interpolation between ranks), max, sample std (ddof=1), "
                  "cv = std/mean, throughput = samples / their total time (sequential, one request at a time; "
                  "JSON only), 95% confidence interval of the median from order statistics. Every table, ratio "
                  "and the recommendation use the median: FPS = 1000 / median ms",
    "ratios": "speed_vs_reference = ONNX Runtime's median / this median at the same thread count (> 1: faster), "
              "shown as 'N.NNx faster' or 'N.NNx slower' than ONNX Runtime; 'vs fastest' likewise against the "
              "lowest median. ratio_to_reference = median / ONNX Runtime's median and ratio_to_fastest = median / "
              "the lowest median are the latency ratios (the inverse direction), kept in the JSON",
    "stability": f"a result is marked unstable (field 'unstable', a warning in the terminal and the reports) when "
                 f"its cv exceeds {MAX_CV:.2f} or the 1-minute load average exceeds the CPU count: other work "
                 f"was competing, so rerun on a quieter machine before trusting the ranking",
    "memory": "peak_rss_added_mb: how far the peak resident memory of a fresh child process (the runtime's "
              "module already imported) rises over loading the artifact and its first 5 inferences (Linux: the "
              "kernel's high-water mark VmHWM, reset just before the load); a fresh process, so memory other "
              "artifacts freed cannot hide it. process_peak_rss_mb: this process's peak over the interleaved "
              "steady state, with every artifact of that thread count loaded",
    "inputs": "the same inputs for every artifact: the given files through the manifest's preprocessing, or "
              "one generated sample (a synthetic picture through the preprocessing for image inputs)",
}


def parse_threads(threads) -> list[int]:
    if threads is None:
        return [latency.default_threads()]
    if isinstance(threads, (int, str)):
        threads = [threads]
    out = []
    for t in threads:
        for part in str(t).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                n = int(part)
            except ValueError:
                raise EdgekitError(f"threads: '{part}' is not a whole number") from None
            if n <= 0:
                raise EdgekitError(f"threads must be positive numbers, not {n}")
            out.append(n)
    if not out:
        raise EdgekitError("threads: give at least one thread count")
    return list(dict.fromkeys(out))


def _size_mb(path: Path, manifest: Manifest | None) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    files = [manifest.file(path, role) for role in manifest.files] if manifest else list(path.iterdir())
    return sum(f.stat().st_size for f in files if f.is_file()) / 1e6


def _labels(paths: list[Path], formats: list[str]) -> list[str]:
    """Format names where they are unique, else format:folder-name."""
    labels = []
    for p, f in zip(paths, formats):
        labels.append(f if formats.count(f) == 1 else f"{f}:{p.stem if p.is_file() else p.name}")
    seen = {}
    for i, lab in enumerate(labels):
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] > 1:
            labels[i] = f"{lab}#{seen[lab]}"
    return labels


def _verification(manifest: Manifest | None, fmt: str, is_plain_onnx: bool):
    if is_plain_onnx:
        return "reference", 1.0, None
    v = manifest.verification if manifest else None
    if v is None:
        return ("reference" if fmt == "onnx" else "unverified"), None, None
    worst = min((o.cosine for o in v.outputs), default=None)
    return ("ok" if v.passed else "inaccurate"), worst, asdict(v)


# ---------------------------------------------------------------- the measurement

def bench_artifacts(artifacts, threads=None, plan: TimingPlan | None = None, data=None, preprocessing=None,
                    input_shapes=None, progress: Callable[[str], None] | None = None,
                    labels: list[str] | None = None, memory: str = "subprocess"
                    ) -> tuple[list[BenchResult], dict, str]:
    """Measure artifacts (folders or .onnx files) at each thread count; returns (results, schedules, inputs)."""
    progress = progress or (lambda msg: None)
    plan = plan or TimingPlan()
    plan.validate()
    thread_list = parse_threads(threads)
    paths = [Path(a) for a in artifacts]
    if not paths:
        raise EdgekitError("nothing to benchmark: give artifact folders or .onnx files")
    manifests = [read_artifact(p) for p in paths]  # the door's errors for missing or unknown paths
    formats = [m.format if m else "onnx" for m in manifests]
    for fmt in dict.fromkeys(formats):
        backends.get(fmt).require()
    if data:
        for d in data:
            if not Path(d).exists():
                raise EdgekitError(f"{spell('data', str(d))}: no such file or folder")
    labels = labels or _labels(paths, formats)
    for p, m in zip(paths, manifests):  # hashing is not the runtime's load time: check the files once, untimed
        if m:
            m.check_files(p)

    import_s = {}
    for fmt in dict.fromkeys(formats):
        t0 = time.perf_counter()
        backends.get(fmt).import_runtime()
        import_s[fmt] = time.perf_counter() - t0

    results: list[BenchResult] = []
    schedules = {}
    inputs_desc = ""
    for t in thread_list:
        loaded = []
        for path, manifest, fmt, label in zip(paths, manifests, formats, labels):
            backend = backends.get(fmt)
            status, worst, ver = _verification(manifest, fmt, path.is_file())
            r = BenchResult(label=label, artifact=str(path), format=fmt, threads=t, status=status,
                            runtime=backend.runtime if fmt != "onnx" else "ONNX Runtime (CPU)",
                            versions={k: v for k, v in backend.versions().items() if v},
                            size_mb=round(_size_mb(path, manifest), 4), worst_cosine=worst, verification=ver,
                            import_s=import_s[fmt])
            results.append(r)
            progress(f"[{label}] threads {t}: loading")
            try:
                with latency.PeakRss() as mem:
                    t0 = time.perf_counter()
                    runner = open_artifact(path, manifest, t, files_checked=True) if manifest \
                        else load(path, t, input_shapes=input_shapes)
                    r.load_s = time.perf_counter() - t0
                    samples, inputs_desc = inputs_mod.timing_inputs(runner, data, preprocessing)
                    t0 = time.perf_counter()
                    runner(samples[0])
                    r.first_inference_s = time.perf_counter() - t0
            except ModelError as e:  # a runtime refusing an artifact: report it, bench the others
                r.status, r.error = "error", str(e)
                continue
            except EdgekitError:
                raise
            except Exception as e:  # a runtime crashing on an artifact: the same
                r.status, r.error = "error", f"{type(e).__name__}: {e}"
                continue
            r.peak_rss_added_mb = round(mem.added / 2**20, 2)
            if memory == "subprocess":
                r.peak_rss_added_mb, r.memory_method = memory_in_child(path, t, input_shapes, data, preprocessing)
            else:
                r.memory_method = "in process: " + mem.method
            p = runner.manifest.precision
            r.precision = {"requested": p.requested, "weights": p.weights, "compute": p.compute,
                           "settings": runner.settings(), "effective": runner.effective_precision}
            loaded.append((r, runner, samples))

        subjects = {r.label: _caller(runner, samples) for r, runner, samples in loaded}
        progress(f"threads {t}: measuring {', '.join(subjects)} interleaved")
        with latency.PeakRss() as mem:
            measured, schedule = latency.measure(subjects, plan, progress=progress)
        schedules[str(t)] = schedule
        for r, runner, _ in loaded:
            m = measured[r.label]
            r.samples_ms = [round(s * 1e3, 6) for s in m.samples]
            r.warmup_ms = [round(s * 1e3, 6) for s in m.warmup]
            r.blocks = m.blocks
            r.stats = latency.summarize(m.samples).to_dict()
            r.unstable = instability(r.stats, _load_average(), os.cpu_count() or 1)
            r.process_peak_rss_mb = round(mem.peak / 2**20, 1)
            runner.close()
        loaded.clear()
        _ratios([r for r in results if r.threads == t])
    return results, schedules, inputs_desc


def _caller(runner, samples):
    if len(samples) == 1:
        feeds = samples[0]
        return lambda: runner(feeds)
    state = {"i": 0}

    def call():
        i = state["i"]
        state["i"] = i + 1
        return runner(samples[i % len(samples)])

    return call


def _ratios(group: list[BenchResult]) -> None:
    timed = [r for r in group if r.stats]
    if not timed:
        return
    ref = next((r for r in timed if r.format == "onnx"), None)
    fastest = min(r.median for r in timed)
    for r in timed:
        r.ratio_to_fastest = r.median / fastest if fastest > 0 else None
        r.ratio_to_reference = r.median / ref.median if ref and ref.median > 0 else None
        r.speed_vs_reference = ref.median / r.median if ref and r.median > 0 else None


def instability(stats: dict, load1: float | None, cpus: int) -> str | None:
    """Why a measurement is not to be trusted, or None: a cv above MAX_CV, or a 1-minute load average above
    the CPU count (other processes competing for the cores)."""
    why = []
    if stats.get("cv", 0.0) > MAX_CV:
        why.append(f"cv {100 * stats['cv']:.0f}% > {100 * MAX_CV:.0f}%")
    if load1 is not None and load1 > cpus:
        why.append(f"load average {load1:.2f} > {cpus} CPUs")
    return ", ".join(why) or None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # not on every platform
        return None


def recommend(results: list[BenchResult]) -> dict | None:
    """The fastest artifact (lowest median) that passed the accuracy check (the reference counts as passing)."""
    good = [r for r in results if r.stats and r.status in ("ok", "reference")]
    if not good:
        return None
    best = min(good, key=lambda r: r.median)
    ref = next((r for r in results if r.stats and r.format == "onnx" and r.threads == best.threads), None)
    speedup = ref.median / best.median if ref and best.median > 0 else None
    text = (f"{best.format} at {best.threads} thread(s): median {best.median:.3f} ms ({report.fps_text(best.stats)})"
            + (f", {report.speed_text(speedup)} than ONNX Runtime" if speedup and best.format != "onnx" else "")
            + (f", worst cosine {best.worst_cosine:.6f}" if best.worst_cosine is not None else "")
            + (f"; unstable measurement ({best.unstable})" if best.unstable else ""))
    return {"format": best.format, "label": best.label, "threads": best.threads, "median_ms": best.median,
            "speedup_vs_onnxruntime": speedup, "artifact": best.artifact, "text": text}


def environment(formats) -> dict:
    """The machine (latency.environment) plus what the benchmarked backends report about themselves."""
    env = latency.environment()
    for fmt in dict.fromkeys(formats):
        if all(m in sys.modules for m in backends.get(fmt).runtime_modules):
            env.update(backends.get(fmt).environment())
    return env
