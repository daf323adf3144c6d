#!/usr/bin/env python
"""Pipeline throughput: the face app's graph (nodes in threads) vs a naive single-thread loop (read, preprocess,
infer, postprocess, draw, write in sequence: the same nodes run inline) on the same video and backend.

Prints frames/s of each and their ratio (goal >= 1.5x on 2 cores), each stage's standalone rate from the naive
loop so the graph's throughput can be set against its bottleneck stage (goal >= 95%), and the flow limiter's
latency bound: a source paced at 30 fps into the OCR app (slower than 30 fps) keeps the median end-to-end
latency under 2x the per-frame processing time. Writes JSON with --json.

    python benchmarks/pipeline_throughput.py --backend onnx --frames 90 --json pipeline_throughput.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def build_app(app: str, video: Path, backend: str, threads: int, out: Path, cache: Path | None, **over):
    from edgekit.pipeline import Overrides, build

    o = Overrides(source=str(video), sinks=[str(out / f"{app}.avi")], backend=backend, threads=threads,
                  cache=str(cache) if cache else None, options={"log.path": str(out / f"{app}.jsonl")}, **over)
    return build(ROOT / "apps" / app / "graph.yaml", o, log=lambda m: print(f"  {m}", file=sys.stderr))


def throughput(video, backend, threads, frames, rounds, out, cache, max_in_flight):
    graph_fps, naive_fps, stages, graph_nodes = [], [], None, None
    for r in range(rounds):  # interleaved, best of N: the machine is shared
        p = build_app("face", video, backend, threads, out, cache, max_in_flight=max_in_flight)
        s = p.run(max_frames=frames)
        graph_fps.append(s.fps)
        graph_nodes = s.nodes
        q = build_app("face", video, backend, threads, out, cache)
        n = q.run_inline(max_frames=frames)
        naive_fps.append(n.fps)
        if stages is None or n.fps >= max(naive_fps):
            stages = [(d["node"], d["latency_ms_median"]) for d in n.nodes]
        print(f"  round {r + 1}: graph {s.fps:.1f} frames/s, naive loop {n.fps:.1f} frames/s", file=sys.stderr)
    return max(graph_fps), max(naive_fps), stages, graph_nodes


def latency_bound(backend, threads, seconds, out, cache, ocr_video):
    """OCR app (well under 30 frames/s here) fed by a source paced at 30 fps for `seconds`."""
    per_frame = build_app("ocr", ocr_video, backend, threads, out, cache).run_inline(max_frames=4)
    processing_ms = statistics.median(per_frame.e2e_ms)
    p = build_app("ocr", ocr_video, backend, threads, out, cache, realtime=True, loop=0)
    s = p.run(max_frames=int(30 * seconds))
    d = s.as_dict()
    return {"source_fps": 30, "processing_ms_per_frame": processing_ms, "frames_in": s.frames_in,
            "frames_processed": s.frames_processed, "frames_dropped": s.frames_dropped,
            "e2e_latency_ms_median": d["e2e_latency_ms_median"], "e2e_latency_ms_p90": d["e2e_latency_ms_p90"],
            "ratio_to_processing": d["e2e_latency_ms_median"] / processing_ms if processing_ms else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--threads", type=int, default=1, help="threads per runtime, in both runs (default 1)")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-in-flight", type=int, default=3)
    ap.add_argument("--latency-seconds", type=float, default=10.0, help="0 skips the latency part")
    ap.add_argument("--cache", default=None, help="model cache (default ~/.cache/edgekit/pipeline)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import make_sample_media

    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        tmp = Path(tmp)
        media = make_sample_media.make(tmp / "media", frames=args.frames, ocr_frames_count=8)
        g, n, stages, graph_nodes = throughput(media["face"], args.backend, args.threads, args.frames, args.rounds,
                                               tmp, args.cache, args.max_in_flight)
        rates = [(name, 1000.0 / ms) for name, ms in stages if ms]
        bottleneck = min(rates, key=lambda x: x[1])
        print(f"\nface app, {args.backend}, {args.frames} frames, {args.threads} thread(s) per runtime, "
              f"{os.cpu_count()} cores")
        print(f"  graph (threads + queues): {g:7.1f} frames/s")
        print(f"  naive single-thread loop: {n:7.1f} frames/s")
        print(f"  ratio graph / naive:      {g / n:7.2f}x   (goal >= 1.5x on 2 cores)")
        print("  stage standalone rates (naive loop, median per frame):")
        for name, rate in rates:
            print(f"    {name:<12} {rate:8.1f} frames/s  ({1000 / rate:6.2f} ms)")
        print(f"  bottleneck stage: {bottleneck[0]} at {bottleneck[1]:.1f} frames/s; graph reaches "
              f"{100 * g / bottleneck[1]:.0f}% of it (goal >= 95%)")
        result = {"backend": args.backend, "threads": args.threads, "frames": args.frames, "cpus": os.cpu_count(),
                  "machine": platform.processor() or platform.machine(), "graph_fps": g, "naive_fps": n,
                  "ratio": g / n, "stages_fps": dict(rates), "bottleneck": {"node": bottleneck[0],
                                                                            "fps": bottleneck[1]},
                  "graph_vs_bottleneck": g / bottleneck[1], "graph_nodes": graph_nodes}
        if args.latency_seconds > 0:
            lat = latency_bound(args.backend, args.threads, args.latency_seconds, tmp, args.cache, media["ocr"])
            print(f"\nflow limiter: OCR app, source paced at 30 frames/s for {args.latency_seconds:.0f} s")
            print(f"  per-frame processing {lat['processing_ms_per_frame']:.0f} ms; {lat['frames_in']} frames in, "
                  f"{lat['frames_processed']} processed, {lat['frames_dropped']} dropped")
            print(f"  end-to-end latency median {lat['e2e_latency_ms_median']:.0f} ms, p90 "
                  f"{lat['e2e_latency_ms_p90']:.0f} ms = {lat['ratio_to_processing']:.2f}x the processing time "
                  "(goal < 2x)")
            result["latency"] = lat
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
