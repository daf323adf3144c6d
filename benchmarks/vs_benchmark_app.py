"""edgekit bench vs OpenVINO's own benchmark_app on the same IR (goal: medians within 10%).

For each model (PP-OCR cls and rec by default) the OpenVINO artifact is exported once; then, for a few rounds
in shuffled order, benchmark_app (sync API, one stream, same thread count, f32, `-hint none`) runs for S
seconds in a subprocess and `edgekit.bench` measures the same IR for S seconds. benchmark_app times
`infer()` alone (inputs pre-filled, "inference only" mode); edgekit times the runner call including input copy
and output fetch, so a small positive difference is expected. Prints the ratio of medians, writes JSON.

    python benchmarks/vs_benchmark_app.py [--models ppocr-cls,ppocr-rec] [--threads 1] [--seconds 5] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def benchmark_app_cmd() -> list[str]:
    """OpenVINO's benchmark_app (the `benchmark_app` console script's entry point), run by this interpreter so
    that it is the OpenVINO edgekit uses (`python -m openvino.tools.benchmark.main` does nothing: no __main__)."""
    return [sys.executable, "-c", "import sys; from openvino.tools.benchmark.main import main; sys.exit(main())"]


def run_benchmark_app(xml: Path, threads: int, seconds: float) -> dict:
    cmd = benchmark_app_cmd() + ["-m", str(xml), "-d", "CPU", "-api", "sync", "-hint", "none", "-nstreams", "1",
                                 "-nthreads", str(threads), "-infer_precision", "f32", "-t", str(int(max(1, seconds)))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    stats = {}
    for key in ("Median", "Average", "Min", "Max"):
        m = re.search(rf"{key}:\s+([\d.]+)\s*(ms|us|s)\b", out)
        if m:
            stats[key.lower()] = float(m[1]) * {"s": 1e3, "ms": 1.0, "us": 1e-3}[m[2]]
    m = re.search(r"ENABLE_CPU_PINNING:\s+(\w+)", out)
    if m:
        stats["ENABLE_CPU_PINNING"] = m[1]
    m = re.search(r"Count:\s+(\d+)", out)
    if m:
        stats["count"] = int(m[1])
    if "median" not in stats:
        raise RuntimeError(f"benchmark_app failed (exit {proc.returncode}):\n{out[-2000:]}")
    stats["command"] = " ".join(cmd)
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ppocr-cls,ppocr-rec")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per tool per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="keep the exported IRs here (default: a temp folder)")
    ap.add_argument("--artifacts", default=None, metavar="DIR",
                    help="use OpenVINO artifacts already exported into DIR (DIR/*cls*_openvino, DIR/*rec*_openvino) "
                         "instead of exporting")
    ap.add_argument("--json", default="vs_benchmark_app.json")
    args = ap.parse_args(argv)

    import edgekit
    from edgekit.harness import latency

    tmp = tempfile.TemporaryDirectory(prefix="edgekit-vs-ba-")
    out = Path(args.out or tmp.name)
    rng = np.random.default_rng(0)
    report = {"threads": args.threads, "seconds": args.seconds, "rounds": args.rounds,
              "benchmark_app": " ".join(benchmark_app_cmd()), "environment": latency.environment(), "models": {}}
    print(f"{'model':12} {'edgekit ms':>11} {'benchmark_app ms':>17} {'ratio':>7}   per-round ratios")
    worst = 0.0
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if args.artifacts:
            from edgekit.manifest import Manifest

            found = sorted(Path(args.artifacts).glob(f"*{name.split('-')[-1]}*_openvino"))
            if not found:
                print(f"{name:12} no *{name.split('-')[-1]}*_openvino in {args.artifacts}")
                continue
            path = found[0]
            xml = path / Manifest.load(path).files["xml"]
        else:
            from edgekit.fixtures import OCR_MODELS

            fx = OCR_MODELS[name]
            (res,) = edgekit.export(fx.path, target="openvino", out=out / name, input_shapes=[fx.input_shape],
                                    preprocessing=fx.preprocessing, force=True)
            if not res.ok:
                print(f"{name:12} export failed: {res.error}")
                continue
            path = res.path
            xml = res.path / res.manifest.files["xml"]
        rounds = []
        for k in range(args.rounds):
            order = ["benchmark_app", "edgekit"]
            rng.shuffle(order)
            row = {"order": list(order)}
            for tool in order:
                if tool == "benchmark_app":
                    row["benchmark_app"] = run_benchmark_app(xml, args.threads, args.seconds)
                else:
                    rep = edgekit.bench([path], threads=[args.threads], warmup=10, iterations=50,
                                        min_seconds=args.seconds, max_seconds=args.seconds * 1.5, memory="inprocess",
                                        seed=k)
                    row["edgekit"] = rep.results[0].stats
            row["ratio"] = row["edgekit"]["median"] / row["benchmark_app"]["median"]
            rounds.append(row)
        ratios = [r["ratio"] for r in rounds]
        ratio = float(np.median(ratios))
        worst = max(worst, abs(ratio - 1))
        e = float(np.median([r["edgekit"]["median"] for r in rounds]))
        b = float(np.median([r["benchmark_app"]["median"] for r in rounds]))
        report["models"][name] = {"ratio_of_medians": ratio, "edgekit_median_ms": e, "benchmark_app_median_ms": b,
                                  "ir": str(xml.name), "rounds": rounds}
        print(f"{name:12} {e:11.4f} {b:17.4f} {ratio:7.3f}   " + " ".join(f"{v:.3f}" for v in ratios), flush=True)
    report["goal"] = "edgekit median within 10% of benchmark_app's"
    report["worst_deviation"] = worst
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"worst deviation {100 * worst:.1f}% (goal <= 10%); wrote {args.json}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
