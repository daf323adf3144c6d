"""`edgekit.bench` (this module is edgekit.harness.bench): latency of artifacts on every backend, measured the same way (DESIGN §7).

Two ways in:
    edgekit.bench(["m_ncnn", "m_mnn", "m.onnx"], threads=[1, 2])     # existing artifacts, interleaved
    edgekit.bench("model.onnx", target="all")                          # one-shot: export, check, bench
Both return a BenchReport; `report.write_json/markdown/html(path)` write the reports (edgekit.harness.report).
The methodology (what is timed, how spin-waiting worker threads are handled, memory) is in METHODOLOGY below,
copied into every JSON report, and explained in docs/bench.md."""
from __future__ import annotations

import datetime
import importlib
import importlib.util
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__, backends
from ..errors import EdgekitError
from . import latency
from .latency import TimingPlan
from ..manifest import MANIFEST_NAME, Manifest, Preprocessing  # noqa: F401  (bench.Preprocessing in the memory child)

# The Python modules a runner imports; imported (and timed) once before any load, so that load time is the
# artifact's own cost, not the one-time cost of importing a runtime into the process.
RUNTIME_MODULES = {"onnx": ["onnxruntime"], "ncnn": ["ncnn"], "mnn": ["MNN"],
                   "tflite": ["ai_edge_litert.interpreter"], "openvino": ["openvino"]}

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
                  "cv = std/mean, throughput = samples / their total time (sequential, one request at a time), "
                  "95% confidence interval of the median from order statistics",
    "ratios": "ratio_to_reference = median / median of ONNX Runtime at the same thread count; ratio_to_fastest = "
              "median / the lowest median at the same thread count (1.0 is the fastest)",
    "memory": "peak_rss_added_mb: how far the peak resident memory of a fresh child process (the runtime's "
              "module already imported) rises over loading the artifact and its first 5 inferences (Linux: the "
              "kernel's high-water mark VmHWM, reset just before the load); a fresh process, so memory other "
              "artifacts freed cannot hide it. process_peak_rss_mb: this process's peak over the interleaved "
              "steady state, with every artifact of that thread count loaded",
    "inputs": "the same inputs for every artifact: the given files through the manifest's preprocessing, or "
              "one generated sample (a synthetic picture through the preprocessing for image inputs)",
}


@dataclass
class BenchResult:
    label: str  # a short unique name for tables and plots
    artifact: str
    format: str
    threads: int
    status: str = "ok"  # ok | inaccurate | failed | unverified | reference | error
    error: str | None = None
    runtime: str = ""
    versions: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict)
    size_mb: float | None = None
    worst_cosine: float | None = None
    verification: dict | None = None
    import_s: float | None = None
    load_s: float | None = None
    first_inference_s: float | None = None
    peak_rss_added_mb: float | None = None
    memory_method: str = ""
    process_peak_rss_mb: float | None = None
    stats: dict | None = None  # latency.Stats.to_dict(), ms
    ratio_to_reference: float | None = None
    ratio_to_fastest: float | None = None
    blocks: int = 0
    samples_ms: list = field(default_factory=list)
    warmup_ms: list = field(default_factory=list)
    export_seconds: float | None = None

    @property
    def median(self) -> float | None:
        return self.stats["median"] if self.stats else None


@dataclass
class BenchReport:
    title: str
    created: str
    edgekit: str
    environment: dict
    methodology: dict
    settings: dict
    results: list[BenchResult]
    one_shot: bool = False
    model: str | None = None
    inputs: str = ""
    recommendation: dict | None = None
    schedules: dict = field(default_factory=dict)  # threads -> [(round, label, calls)]
    artifacts_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def write_json(self, path) -> Path:
        from . import report

        return report.write_json(self, path)

    def write_markdown(self, path) -> Path:
        from . import report

        return report.write_markdown(self, path)

    def write_html(self, path) -> Path:
        from . import report

        return report.write_html(self, path)


# ---------------------------------------------------------------- helpers

def openmp_runtime() -> str | None:
    """Which OpenMP runtime the ncnn module runs on (it decides whether openmp_blocktime means anything)."""
    try:
        import ncnn  # noqa: F401
        with open("/proc/self/maps") as f:
            maps = f.read()
    except (ImportError, OSError):
        return None
    if "libgomp" in maps:
        return "GNU libgomp (openmp_blocktime has no effect; spin set by GOMP_SPINCOUNT/OMP_WAIT_POLICY)"
    if "libomp" in maps or "libiomp" in maps:
        return "LLVM/Intel libomp (openmp_blocktime applies)"
    return "unknown"


def _parse_threads(threads) -> list[int]:
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


def _artifact_format(path: Path) -> str:
    if path.is_file() and path.suffix == ".onnx":
        return "onnx"
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return Manifest.load(path).format
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or folder")
    raise EdgekitError(f"{path}: neither an .onnx model nor an edgekit artifact folder (no {MANIFEST_NAME})")


def _size_mb(path: Path, manifest: Manifest | None) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    files = [path / f for f in manifest.files.values()] if manifest else list(path.iterdir())
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


def _load(path: Path, threads: int, input_shapes):
    from ..runner import load

    if input_shapes and path.is_file():  # a plain .onnx with dynamic axes: fix them for the run
        from ..backends.onnxruntime import OrtRunner
        from ..onnx import inspect
        from ..onnx.load import load_model
        from ..onnx.shapes import fix_input_shapes, parse_shape_args, resolve_input_shapes
        from ..manifest import Precision

        model = load_model(path)
        shapes = input_shapes if isinstance(input_shapes, dict) else parse_shape_args(list(input_shapes))
        model = fix_input_shapes(model, resolve_input_shapes(model, shapes))
        m = Manifest("onnx", {"model": path.name}, {"file": path.name}, inspect.graph_inputs(model),
                     inspect.graph_outputs(model), Precision())
        return OrtRunner(m, path.parent, threads, model_bytes=model.SerializeToString())
    return load(path, threads=threads)


def _feeds(runner, data, preprocessing):
    from . import inputs as inputs_mod
    from ..onnx.shapes import format_shape

    for spec in runner.inputs:
        if any(not isinstance(d, int) for d in spec.shape[1:]):
            raise EdgekitError(f"input '{spec.name}' has dynamic shape {format_shape(spec.shape)}; give a static "
                               f"one with --input-shape {spec.name}:1x3x...")
    pre = preprocessing or runner.manifest.preprocessing
    if data:
        samples = inputs_mod.load_samples(list(map(Path, data)), runner.inputs, pre)
        return samples, f"{len(samples)} sample(s) from {', '.join(map(str, data))}"
    feeds, what = inputs_mod.generated_inputs(runner.inputs, pre, seed=0)
    return [feeds], "generated: " + what


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
    thread_list = _parse_threads(threads)
    paths = [Path(a) for a in artifacts]
    if not paths:
        raise EdgekitError("nothing to benchmark: give artifact folders or .onnx files")
    formats = [_artifact_format(p) for p in paths]  # raises for missing files and unknown formats
    for fmt in dict.fromkeys(formats):
        backends.get(fmt).require()
    if data:
        for d in data:
            if not Path(d).exists():
                raise EdgekitError(f"--input {d}: no such file or folder")
    labels = labels or _labels(paths, formats)

    import_s = {}
    for fmt in dict.fromkeys(formats):
        t0 = time.perf_counter()
        for mod in RUNTIME_MODULES.get(fmt, []):
            importlib.import_module(mod)
        import_s[fmt] = time.perf_counter() - t0

    results: list[BenchResult] = []
    schedules = {}
    inputs_desc = ""
    for t in thread_list:
        loaded = []
        for path, fmt, label in zip(paths, formats, labels):
            backend = backends.get(fmt)
            manifest = Manifest.load(path) if path.is_dir() else None
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
                    runner = _load(path, t, input_shapes)
                    r.load_s = time.perf_counter() - t0
                    samples, inputs_desc = _feeds(runner, data, preprocessing)
                    t0 = time.perf_counter()
                    runner(samples[0])
                    r.first_inference_s = time.perf_counter() - t0
            except EdgekitError:
                raise
            except Exception as e:  # a runtime refusing an artifact: report it, bench the others
                r.status, r.error = "error", f"{type(e).__name__}: {e}"
                continue
            r.peak_rss_added_mb = round(mem.added / 2**20, 2)
            if memory == "subprocess":
                r.peak_rss_added_mb, r.memory_method = _memory_in_child(path, fmt, t, input_shapes, data,
                                                                        preprocessing)
            else:
                r.memory_method = "in process: " + mem.method
            p = runner.manifest.precision
            r.precision = {"requested": p.requested, "weights": p.weights, "compute": p.compute,
                           "settings": dict(p.settings)}
            eff = getattr(runner, "effective_precision", None)
            if eff:
                r.precision["effective"] = eff
            if fmt == "ncnn":
                opt = runner.net.opt
                r.precision["settings"].update({"num_threads": opt.num_threads,
                                                "openmp_blocktime": opt.openmp_blocktime,
                                                "openmp_runtime": openmp_runtime()})
            loaded.append((r, runner, samples))

        subjects = {}
        for r, runner, samples in loaded:
            subjects[r.label] = _caller(runner, samples)
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
            r.process_peak_rss_mb = round(mem.peak / 2**20, 1)
            runner.close()
        loaded.clear()
        _ratios([r for r in results if r.threads == t])
    return results, schedules, inputs_desc


MEMORY_CHILD = r"""
import json, sys, time
from pathlib import Path
from edgekit.harness import bench, latency
args = json.loads(sys.argv[1])
for mod in bench.RUNTIME_MODULES.get(args["format"], []):
    __import__(mod)
with latency.PeakRss() as mem:
    runner = bench._load(Path(args["path"]), args["threads"], args["input_shapes"])
    pre = args["preprocessing"] and bench.Preprocessing(**args["preprocessing"])
    samples, _ = bench._feeds(runner, args["data"], pre)
    for i in range(5):
        runner(samples[i % len(samples)])
print("EDGEKIT-MEMORY " + json.dumps({"added": mem.added, "method": mem.method}))
"""


def _memory_in_child(path, fmt, threads, input_shapes, data, preprocessing):
    """Peak resident memory an artifact adds to a fresh process (runtime already imported) over load and the
    first 5 inferences: measured in a child so that memory other artifacts freed cannot hide it."""
    import json
    import subprocess

    arg = json.dumps({"path": str(path), "format": fmt, "threads": threads, "data": [str(d) for d in data or []],
                      "preprocessing": asdict(preprocessing) if preprocessing else None,
                      "input_shapes": list(input_shapes) if input_shapes and not isinstance(input_shapes, dict)
                      else input_shapes})
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, arg], capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("EDGEKIT-MEMORY "):
            d = json.loads(line.split(" ", 1)[1])
            return round(d["added"] / 2**20, 2), "fresh child process: " + d["method"]
    return None, f"not measured (child exited {proc.returncode})"


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


def recommend(results: list[BenchResult]) -> dict | None:
    """The fastest artifact that passed the accuracy check (the reference counts as passing)."""
    good = [r for r in results if r.stats and r.status in ("ok", "reference")]
    if not good:
        return None
    best = min(good, key=lambda r: r.median)
    ref = next((r for r in results if r.stats and r.format == "onnx" and r.threads == best.threads), None)
    speedup = ref.median / best.median if ref else None
    text = (f"{best.format} at {best.threads} thread(s): median {best.median:.3f} ms"
            + (f", {speedup:.2f}x ONNX Runtime's speed" if speedup and best.format != "onnx" else "")
            + (f", worst cosine {best.worst_cosine:.6f}" if best.worst_cosine is not None else ""))
    return {"format": best.format, "label": best.label, "threads": best.threads, "median_ms": best.median,
            "speedup_vs_onnxruntime": speedup, "artifact": best.artifact, "text": text}


# ---------------------------------------------------------------- the public entry

def bench(artifacts, target: str | None = None, threads=None, warmup: int = 10, iterations: int = 50,
          min_seconds: float = 2.0, max_seconds: float | None = None, data=None, input_shapes=None,
          out=None, preprocessing=None, precision: str | None = None, force: bool = False,
          settle_ms: float = 50.0, gap_ms: float = 0.0, block_seconds: float = 0.1, seed: int = 0,
          memory: str = "subprocess", progress: Callable[[str], None] | None = None) -> BenchReport:
    """Benchmark artifacts, or (with `target`) export an ONNX model to every format of the target, check each
    against ONNX Runtime, and benchmark those that converted. `data`: input files as in `check` (images through
    the preprocessing, or .npy/.npz); default: generated inputs. Bad input raises EdgekitError."""
    progress = progress or (lambda msg: None)
    if isinstance(artifacts, (str, Path)):
        artifacts = [artifacts]
    artifacts = [Path(a) for a in artifacts]
    plan = TimingPlan(warmup=warmup, iterations=iterations, min_seconds=min_seconds, max_seconds=max_seconds,
                      settle_ms=settle_ms, gap_ms=gap_ms, block_seconds=block_seconds, seed=seed)
    plan.validate()
    if memory not in ("subprocess", "inprocess"):
        raise EdgekitError(f"memory: 'subprocess' or 'inprocess', not '{memory}'")
    thread_list = _parse_threads(threads) if threads is not None else None
    settings = {"timing": asdict(plan), "threads": thread_list, "target": target, "memory": memory}

    if target is None:
        thread_list = thread_list or _parse_threads(None)
        results, schedules, inputs_desc = bench_artifacts(artifacts, thread_list, plan, data, preprocessing,
                                                          input_shapes, progress, memory=memory)
        settings["threads"] = thread_list
        title = "edgekit bench: " + ", ".join(a.name for a in artifacts)
        return BenchReport(title=title, created=_now(), edgekit=__version__, environment=_env(),
                           methodology=METHODOLOGY, settings=settings, results=results, inputs=inputs_desc,
                           recommendation=recommend(results), schedules=schedules)
    return _one_shot(artifacts, target, thread_list, plan, data, input_shapes, out, preprocessing, precision,
                     force, settings, progress, memory)


def _one_shot(artifacts, target, thread_list, plan, data, input_shapes, out, preprocessing, precision, force,
              settings, progress, memory) -> BenchReport:
    from .. import targets as targets_mod
    from ..export import export

    if len(artifacts) != 1 or artifacts[0].suffix != ".onnx":
        raise EdgekitError("--target takes exactly one ONNX model (MODEL.onnx) to export, check and benchmark")
    model = artifacts[0]
    if not model.is_file():
        raise EdgekitError(f"{model}: no such file")
    plan_t = targets_mod.resolve(target)
    thread_list = thread_list or ([plan_t.threads] if plan_t.threads else _parse_threads(None))
    settings["threads"] = thread_list
    for fmt in ["onnx", *plan_t.formats]:
        backends.get(fmt).require()
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgekit-bench-")
        out_dir = Path(tmp.name)
    else:
        out_dir = Path(out)
    try:
        def prog(fmt, stage):
            progress(f"[{fmt}] {stage}")

        common = dict(out=out_dir, input_shapes=input_shapes, data=data, preprocessing=preprocessing,
                      precision=precision, force=force, progress=prog)
        exports = []
        if "onnx" not in plan_t.formats:  # the reference row: ONNX Runtime on the (normalised, shape-fixed) model
            exports += export(model, target="onnx", **common)
        exports += export(model, target=target, **common)
        ok = [e for e in exports if e.ok]
        # the artifacts are already verified at export: `check` is the export's verification
        results, schedules, inputs_desc = bench_artifacts(
            [e.path for e in ok], thread_list, plan, data, preprocessing, None, progress,
            labels=[e.format for e in ok], memory=memory) if ok else ([], {}, "")
        for e in ok:
            for r in results:
                if r.artifact == str(e.path):
                    r.export_seconds = round(e.seconds, 3)
                    if e.format == "onnx":
                        r.status = "reference"
        for e in exports:
            if not e.ok:  # inaccurate or failed: a row without timings; the export left no artifact behind
                v = e.manifest.verification if e.manifest else None
                for t in thread_list:
                    results.append(BenchResult(
                        label=e.format, artifact="", format=e.format, threads=t, status=e.status, error=e.error,
                        runtime=backends.get(e.format).runtime, worst_cosine=min(
                            (o.cosine for o in v.outputs), default=None) if v else None,
                        verification=asdict(v) if v else None, export_seconds=round(e.seconds, 3),
                        precision=asdict(e.manifest.precision) if e.manifest else {}))
        order = {f: i for i, f in enumerate(["onnx", *plan_t.formats])}
        results.sort(key=lambda r: (r.threads, order.get(r.format, 99)))
        title = f"edgekit bench: {model.name} --target {target}"
        return BenchReport(title=title, created=_now(), edgekit=__version__, environment=_env(),
                           methodology=METHODOLOGY, settings=settings, results=results, one_shot=True,
                           model=str(model), inputs=inputs_desc, recommendation=recommend(results),
                           schedules=schedules, artifacts_dir=None if tmp else str(out_dir))
    finally:
        if tmp is not None:
            tmp.cleanup()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _env() -> dict:
    env = latency.environment()
    omp = openmp_runtime() if "ncnn" in sys.modules else None
    if omp:
        env["ncnn_openmp"] = omp
    return env
