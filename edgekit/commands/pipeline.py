"""`edgekit pipeline GRAPH.yaml`: run a camera pipeline with per-node statistics.

    edgekit pipeline apps/face/graph.yaml --source samples/face.avi --sink out/face.avi --backend mnn --stats
    edgekit pipeline apps/ocr/graph.yaml --source 0 --sink http://0.0.0.0:8080      # watch from a browser
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("pipeline", help="run a MediaPipe-style graph (YAML) on a camera, file or stream",
                       description="Run a pipeline graph. Sources: a camera index (0), a video file, an image "
                       "folder or pattern, an rtsp:// or http:// stream. Sinks: window (with a display), a video "
                       "file (.avi/.mp4/.webm), jsonl:FILE, http://HOST:PORT (an MJPEG viewer for a browser).")
    p.add_argument("graph", nargs="?", help="the graph's YAML file")
    p.add_argument("--source", help="replace the graph's source: 0, video file, image folder/pattern, stream URL")
    p.add_argument("--sink", action="append", default=[], help="replace the graph's sink (repeat for several): "
                   "window, out.avi, jsonl:out.jsonl, http://0.0.0.0:8080")
    p.add_argument("--backend", choices=["onnx", "ncnn", "mnn", "openvino", "tflite"],
                   help="run every model on this backend (exported once and cached; default: the graph's)")
    p.add_argument("--artifact", action="append", default=[], metavar="NODE=PATH",
                   help="run inference node NODE on this artifact folder or .onnx file (NODE= may be left out when "
                   "the graph has one inference node)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.OPTION=VALUE",
                   help="change a node's option, e.g. --set log.path=out.jsonl --set detections.min_score=0.6")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many source frames")
    p.add_argument("--max-in-flight", type=int, default=None, help="the flow limiter's frames in flight, for live sources and files alike")
    p.add_argument("--flow", choices=["auto", "drop", "block"], default=None,
                   help="when the limiter is full: drop frames (live) or make the source wait (files)")
    p.add_argument("--realtime", action="store_true", default=None,
                   help="pace a file source at its frame rate, like a camera")
    p.add_argument("--loop", type=int, default=None, help="play a file source N times (0: forever)")
    p.add_argument("--threads", type=int, default=None, help="threads per inference runtime")
    p.add_argument("--cache", default=None, help="where exported models are cached (default ~/.cache/edgekit)")
    p.add_argument("--stats", action="store_true", help="print live per-node statistics every second")
    p.add_argument("--trace", default=None, metavar="FILE.json", help="write a Chrome trace of node activity")
    p.add_argument("--summary-json", default=None, metavar="FILE", help="write the end-of-run summary as JSON")
    p.add_argument("--list-nodes", action="store_true", help="list the registered node types and exit")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import EdgekitError
    from ..pipeline import Overrides, PipelineError, build, node_types
    from ..pipeline.stats import format_nodes

    if args.list_nodes:
        for kind, cls in node_types().items():
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"{kind:<18} in: {','.join(cls.inputs) or '-':<14} out: {','.join(cls.outputs) or '-':<10} "
                  f"{doc[0] if doc else ''}")
        return 0
    if not args.graph:
        raise EdgekitError("give a graph YAML file (see apps/face/graph.yaml), or --list-nodes")
    artifacts = {}
    for item in args.artifact:
        node, sep, path = item.partition("=")
        artifacts[node if sep else ""] = path if sep else item
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgekitError(f"--set {item}: write NODE.OPTION=VALUE")
        import yaml

        options[key] = yaml.safe_load(value)
    log = lambda msg: print(f"edgekit pipeline: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    o = Overrides(source=args.source, sinks=list(args.sink), backend=args.backend, artifacts=artifacts,
                  max_in_flight=args.max_in_flight, flow=args.flow, realtime=args.realtime, loop=args.loop,
                  threads=args.threads, cache=args.cache, trace=args.trace, options=options)
    pipeline = build(args.graph, o, log=log)
    log(f"graph '{pipeline.name}': {len(pipeline.nodes)} nodes, backend {pipeline.info['backend']}")

    def live(p):
        s = p.snapshot()
        print(f"[{s.seconds:6.1f} s] {s.frames_in} in, {s.frames_processed} processed, {s.frames_dropped} dropped, "
              f"{s.fps:.1f} frames/s", file=sys.stderr)
        print(format_nodes(s.nodes), file=sys.stderr, flush=True)

    try:
        summary = pipeline.run(max_frames=args.max_frames, on_stats=live if args.stats else None)
    except PipelineError as e:
        s = pipeline.summary
        print(s.format(), file=sys.stderr)
        if e.traceback and not isinstance(e.error, EdgekitError):
            print(e.traceback.rstrip(), file=sys.stderr)
        raise
    print(summary.format())
    if args.trace:
        print(f"trace: {args.trace} (open in chrome://tracing or https://ui.perfetto.dev)")
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary.as_dict(), f, indent=2)
    return 130 if summary.stopped_by == "interrupted" else 0
