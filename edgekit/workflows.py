"""Flows that drive several layers at once, above the exporter: the public `edgekit.bench`, which measures
existing artifacts or, given a target, exports a model, takes each artifact's verification as its check, and
benchmarks every format in one table (the Ultralytics-style one-shot)."""
from __future__ import annotations

import datetime
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from . import backends
from . import targets as targets_mod
from .errors import EdgekitError
from .exporter import export
from .harness.bench import METHODOLOGY, bench_artifacts, environment, parse_threads, recommend
from .harness.latency import TimingPlan
from .harness.results import BenchReport, BenchResult
from .manifest import Preprocessing
from .version import __version__


def bench(artifacts, *, target: str | None = None, threads=None, warmup: int = 10, iterations: int = 50,
          min_seconds: float = 2.0, max_seconds: float | None = None, data=None, input_shapes=None,
          out=None, preprocessing: Preprocessing | None = None, precision: str | None = None, force: bool = False,
          settle_ms: float = 50.0, gap_ms: float = 0.0, block_seconds: float = 0.1, seed: int = 0,
          memory: str = "subprocess", progress: Callable[[str], None] | None = None) -> BenchReport:
    """Benchmark artifacts interleaved, or (with `target`) export an ONNX model to every format of the target,
    check each against ONNX Runtime, and benchmark those that converted.

    Args:
        artifacts: artifact folders and/or .onnx files; with `target`, exactly one MODEL.onnx.
        target: export to this target first (a format, a comma list, "all", or a device profile).
        threads: thread counts to sweep (an int, a list, or "1,2,4"); default the profile's, else this
            process's CPUs.
        warmup: untimed calls per artifact before the first round.
        iterations: at least this many timed calls per artifact...
        min_seconds: ...and at least this many seconds of timed calls.
        max_seconds: stop timing an artifact after this long.
        data: inputs as for `check`: images (through the preprocessing) or .npy/.npz; default generated.
        input_shapes: static shapes for dynamic inputs (export and .onnx runs).
        out: with `target`, keep the artifacts in this folder (default: a temporary folder).
        preprocessing: how images become inputs (default: each artifact's manifest).
        precision: with `target`, the export precision.
        force: with `target`, replace existing artifacts in `out`.
        settle_ms: idle pause before each block, so the previous backend's spinning threads sleep.
        gap_ms: idle time between timed calls (0: back to back; 33: a 30 fps camera).
        block_seconds: length of one block of back-to-back calls in the interleaving.
        seed: seed of the shuffled interleaving order.
        memory: "subprocess" (peak memory in a fresh child, default) or "inprocess".
        progress: called with a line of text as the run goes.

    Returns:
        a BenchReport; `.write_json/.write_markdown/.write_html(path)` write the reports.

    Raises:
        EdgekitError: bad input (paths, thread counts, timing settings, a missing backend).
    """
    progress = progress or (lambda msg: None)
    if isinstance(artifacts, (str, Path)):
        artifacts = [artifacts]
    artifacts = [Path(a) for a in artifacts]
    plan = TimingPlan(warmup=warmup, iterations=iterations, min_seconds=min_seconds, max_seconds=max_seconds,
                      settle_ms=settle_ms, gap_ms=gap_ms, block_seconds=block_seconds, seed=seed)
    plan.validate()
    if memory not in ("subprocess", "inprocess"):
        raise EdgekitError(f"memory: 'subprocess' or 'inprocess', not '{memory}'")
    thread_list = parse_threads(threads) if threads is not None else None
    settings = {"timing": asdict(plan), "threads": thread_list, "target": target, "memory": memory}
    if target is not None:
        return _one_shot(artifacts, target, thread_list, plan, data, input_shapes, out, preprocessing, precision,
                         force, settings, progress, memory)
    thread_list = thread_list or parse_threads(None)
    results, schedules, inputs_desc = bench_artifacts(artifacts, thread_list, plan, data, preprocessing,
                                                      input_shapes, progress, memory=memory)
    settings["threads"] = thread_list
    return BenchReport(title="edgekit bench: " + ", ".join(a.name for a in artifacts), created=_now(),
                       edgekit=__version__, environment=environment(r.format for r in results),
                       methodology=METHODOLOGY, settings=settings, results=results, inputs=inputs_desc,
                       recommendation=recommend(results), schedules=schedules)


def _one_shot(artifacts, target, thread_list, plan, data, input_shapes, out, preprocessing, precision, force,
              settings, progress, memory) -> BenchReport:
    if len(artifacts) != 1 or artifacts[0].suffix != ".onnx":
        raise EdgekitError("a target takes exactly one ONNX model (MODEL.onnx) to export, check and benchmark")
    model = artifacts[0]
    if not model.is_file():
        raise EdgekitError(f"{model}: no such file")
    plan_t = targets_mod.resolve(target)
    thread_list = thread_list or ([plan_t.threads] if plan_t.threads else parse_threads(None))
    settings["threads"] = thread_list
    for fmt in ["onnx", *plan_t.formats]:
        backends.get(fmt).require()
    tmp = tempfile.TemporaryDirectory(prefix="edgekit-bench-") if out is None else None
    out_dir = Path(tmp.name) if tmp else Path(out)
    try:
        common = dict(out=out_dir, input_shapes=input_shapes, data=data, preprocessing=preprocessing,
                      precision=precision, force=force, progress=lambda fmt, stage: progress(f"[{fmt}] {stage}"))
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
        return BenchReport(title=f"edgekit bench: {model.name} --target {target}", created=_now(),
                           edgekit=__version__, environment=environment(r.format for r in results),
                           methodology=METHODOLOGY, settings=settings, results=results, one_shot=True,
                           model=str(model), inputs=inputs_desc, recommendation=recommend(results),
                           schedules=schedules, artifacts_dir=None if tmp else str(out_dir))
    finally:
        if tmp is not None:
            tmp.cleanup()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
