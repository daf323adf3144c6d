"""`edgekit pipeline GRAPH.yaml`: run a camera pipeline with per-node statistics.

    edgekit pipeline apps/face/graph.yaml --source samples/face.avi --sink out/face.avi --backend mnn --stats
    edgekit pipeline apps/ocr/graph.yaml --source 0 --sink http://:8080     # watch from a browser on this machine
    edgekit pipeline apps/ocr/graph.yaml --source 0 --sink http://0.0.0.0:8080  # from others (URL with a token)

SIGTERM and SIGHUP stop a run as Ctrl-C does (outputs finalised, summary printed), exit code 128 + the signal.
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("pipeline", help="run a MediaPipe-style graph (YAML) on a camera, file or stream",
                       description="Run a pipeline graph. Sources: a camera index (0), a video file, an image "
                       "folder or pattern, an rtsp:// or http:// stream. Sinks: window (with a display), a video "
                       "file (.avi/.mp4/.webm), jsonl:FILE, http://HOST:PORT (an MJPEG viewer for a browser). "
                       "Files that exist are not overwritten without --force; the files written are listed at the "
                       "end. SIGTERM/SIGHUP stop a run as Ctrl-C does (exit code 128 + the signal).")
    p.add_argument("graph", nargs="?", help="the graph's YAML file")
    p.add_argument("--source", help="replace the graph's source: 0, video file, image folder/pattern, stream URL")
    p.add_argument("--sink", action="append", default=[], help="replace the graph's sink (repeat for several): "
                   "window, out.avi, jsonl:out.jsonl, http://:8080 (127.0.0.1 only; http://0.0.0.0:8080 for every "
                   "interface, with an access token printed in the URL)")
    p.add_argument("--backend", choices=["onnx", "ncnn", "mnn", "openvino", "tflite"],
                   help="run every model on this backend (exported once and cached; default: the graph's)")
    p.add_argument("--precision", default=None, metavar="fp32|fp16|int8",
                   help="export every inference node at this precision (default: each node's `precision:`, fp32); "
                   "fp16/int8 are judged by each node's `metric:` (the app's task metric), int8 calibrated on what "
                   "each node is fed on the graph's source frames (or --calib)")
    p.add_argument("--strict-precision", action="store_true",
                   help="fail where a node's gate refuses its fp16/int8 artifact, instead of running that node at "
                   "the next precision (fp16, then fp32); the node option `fallback: false` does it per node")
    p.add_argument("--calib", default=None, metavar="VIDEO|FOLDER",
                   help="int8: the sample media to calibrate on (default: the graph's source when it is a file "
                   "or folder): its first frames calibrate, the last quarter of them is held out for the gate")
    p.add_argument("--artifact", action="append", default=[], metavar="NODE=PATH",
                   help="run inference node NODE on this artifact folder or .onnx file (NODE= may be left out when "
                   "the graph has one inference node)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.OPTION=VALUE",
                   help="change a node's option, e.g. --set log.path=out.jsonl --set detections.min_score=0.6")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many source frames")
    p.add_argument("--max-in-flight", type=int, default=None,
                   help="the flow limiter's frames in flight, for live sources and files alike")
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
    p.add_argument("--force", action="store_true", help="overwrite output files that exist")
    p.add_argument("--list-nodes", action="store_true", help="list the registered node types and exit")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import EdgekitError
    from ..pipeline import Overrides, PipelineError, build, node_types, signals
    from ..pipeline.outputs import check_outputs, output_path, stamps

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
    if args.max_frames is not None and args.max_frames < 1:
        raise EdgekitError(f"--max-frames {args.max_frames}: give a number of frames >= 1 (leave it out for all)")
    extra = [(output_path(flag, path), flag) for flag, path in (("--summary-json", args.summary_json),
                                                                 ("--trace", args.trace)) if path is not None]
    log = lambda msg: print(f"edgekit pipeline: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    o = Overrides(source=args.source, sinks=list(args.sink), backend=args.backend, artifacts=artifacts,
                  max_in_flight=args.max_in_flight, flow=args.flow, realtime=args.realtime, loop=args.loop,
                  threads=args.threads, cache=args.cache, trace=args.trace, options=options,
                  precision=args.precision, calib=args.calib, strict_precision=args.strict_precision)
    pipeline = build(args.graph, o, log=log)
    outputs = pipeline.output_files() + extra
    check_outputs(outputs, args.force)
    log(f"graph '{pipeline.name}': {len(pipeline.nodes)} nodes, backend {pipeline.info['backend']}")
    before = stamps(outputs)
    try:
        summary = pipeline.run(max_frames=args.max_frames, on_stats=LiveStats(sys.stderr) if args.stats else None,
                               stop_signals=signals.DEFAULT)
    except signals.Stopped as e:
        log(f"stopped by {signals.name(e.signum)} while starting")
        return signals.exit_code(e.signum)
    except PipelineError as e:
        s = pipeline.summary
        print(s.format(), file=sys.stderr)
        if e.traceback and not isinstance(e.error, EdgekitError):
            print(e.traceback.rstrip(), file=sys.stderr)
        _finish(s, args.summary_json, outputs, before)
        raise
    print(summary.format())
    _finish(summary, args.summary_json, outputs, before)
    if args.trace:
        print(f"trace: {args.trace} (open in chrome://tracing or https://ui.perfetto.dev)")
    return signals.exit_code(pipeline.signal) if pipeline.signal else 0


def _finish(summary, summary_json: str | None, outputs, before: dict) -> None:
    """Write the summary JSON (a failed run's too) and list every file the run wrote."""
    from pathlib import Path

    from ..pipeline.outputs import written

    if summary_json:
        Path(summary_json).parent.mkdir(parents=True, exist_ok=True)
        with open(summary_json, "w") as f:
            json.dump(summary.as_dict(), f, indent=2)
    for path in written(outputs, before):
        print(f"wrote {path}")


class LiveStats:
    """--stats: the run's line and the per-node table every second; redrawn in place (ANSI cursor up) when
    the stream is a terminal, appended as plain lines otherwise (a log file, a pipe)."""

    def __init__(self, stream):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.lines = 0  # lines of the last table drawn

    def __call__(self, p) -> None:
        from ..pipeline.stats import format_nodes

        s = p.snapshot()
        text = (f"[{s.seconds:6.1f} s] {s.frames_in} in, {s.frames_processed} processed, {s.frames_dropped} "
                f"dropped, {s.fps:.1f} frames/s\n{format_nodes(s.nodes)}")
        if self.tty and self.lines:
            self.stream.write(f"\x1b[{self.lines}F\x1b[J")  # back to the table's first line, clear below
        self.stream.write(text + "\n")
        self.stream.flush()
        self.lines = text.count("\n") + 1
