"""Run an ncnn artifact on the CPU and on a Vulkan GPU, compare both with ONNX Runtime on the source model,
and time them side by side (interleaved). For machines with a GPU; writes JSON.

    python3 tools/vulkan_check.py ARTIFACT --model MODEL.onnx --images DIR [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import edgekit  # noqa: E402
from edgekit.harness.compare import metrics  # noqa: E402
from edgekit.harness.inputs import load_samples  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import ncnn

    ref = edgekit.load(args.model)
    cpu = edgekit.load(args.artifact, threads=4)
    gpu = edgekit.load(args.artifact, device="vulkan")
    samples = load_samples([args.images], cpu.inputs, cpu.manifest.preprocessing)
    result = {"gpu": ncnn.get_gpu_info(0).device_name() if hasattr(ncnn.get_gpu_info(0), "device_name") else "gpu0",
              "precision": {"cpu": cpu.effective_precision, "vulkan": gpu.effective_precision}, "samples": []}
    for feed in samples:
        r = ref(feed)
        row = {}
        for name, runner in (("cpu", cpu), ("vulkan", gpu)):
            out = runner(feed)
            row[name] = {k: {"cosine": metrics(v, out[k]).cosine, "max_abs": metrics(v, out[k]).max_abs}
                         for k, v in r.items()}
        result["samples"].append(row)
    times = {"cpu": [], "vulkan": []}
    feed = samples[0]
    for runner in (cpu, gpu):
        for _ in range(3):
            runner(feed)
    for _ in range(args.iterations):
        for name, runner in (("cpu", cpu), ("vulkan", gpu)):
            t = time.perf_counter()
            runner(feed)
            times[name].append(time.perf_counter() - t)
    result["median_ms"] = {k: 1000 * statistics.median(v) for k, v in times.items()}
    result["speedup_vulkan_vs_cpu4"] = result["median_ms"]["cpu"] / result["median_ms"]["vulkan"]
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    worst = min(v["cosine"] for s in result["samples"] for d in s.values() for v in d.values())
    return 0 if worst >= 0.999 else 1


if __name__ == "__main__":
    raise SystemExit(main())
