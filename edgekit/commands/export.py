"""`edgekit export MODEL.onnx --target ncnn|mnn|tflite|openvino|LIST|all|PROFILE`, and
`--target mediapipe --task TASK` (a MediaPipe Tasks-ready .tflite: edgekit/mediapipe)."""
from __future__ import annotations

import json

from .common import add_preprocessing_args, call_with, console, fmt_float, preprocessing_from_args, status


def register(sub) -> None:
    p = sub.add_parser("export", help="convert an ONNX model and verify each result against ONNX Runtime",
                       description="Convert MODEL.onnx to each target format, load the result with its runtime "
                       "and verify it against ONNX Runtime fp32. Exit 0 only when every format converted and "
                       "verified; 1 when one did not; 2 for bad input.")
    p.add_argument("model", help="the ONNX model")
    p.add_argument("--target", "-t", default="all",
                   help="a format (ncnn, mnn, tflite, openvino, onnx), a comma list, 'all', or a device profile "
                        "(see `edgekit targets`); or 'mediapipe' with --task: a .tflite MediaPipe Tasks loads; "
                        "default: all")
    p.add_argument("--task", default=None, metavar="TASK",
                   help="with --target mediapipe: image_classifier, object_detector or face_detector (the metadata "
                        "written and the Tasks API it is checked with; needs the `mediapipe` extra)")
    p.add_argument("--anchors", default=None, metavar="short_range|full_range|FILE.json",
                   help="with --task object_detector: a raw SSD head's anchors and box coding (BlazeFace's, or a "
                        "JSON file: see edgekit/mediapipe/ssd.py), written as MediaPipe's detector metadata")
    p.add_argument("--out", "-o", default=None, help="folder for the artifacts (default: the current folder); "
                   "each format goes to OUT/<model>_<format>/")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:1x3x48x192", dest="input_shapes",
                   help="fix an input's shape (repeatable); a dynamic batch axis alone defaults to 1")
    p.add_argument("--dynamic", action="store_true",
                   help="keep the model's dynamic axes (not batch) where the format can (ncnn, MNN, OpenVINO, ONNX); "
                        "--input-shape then gives the typical size, and verification runs at it and a second size")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                   help="default fp32 (or the profile's); int8 needs --calib")
    p.add_argument("--calib", action="append", default=None, metavar="PATH",
                   help="int8 calibration data: images/folders (through the preprocessing) or .npy/.npz")
    p.add_argument("--max-drop", type=_fraction, default=0.01, metavar="1%",
                   help="int8 accuracy budget: worst output cosine >= 1 - this, top-1 kept in that share of rows; "
                        "layers move back to float until it holds (default 1%%)")
    p.add_argument("--metric", action="append", default=None, metavar="[OUTPUT=]KIND",
                   help="what the fp16/int8 drop is judged by: cosine (default), top1 (argmax agreement of class-"
                        "score rows: a classifier), ctc or ctc@BLANK (a CTC recogniser's greedy-decoded text), "
                        "mask@T (IoU of the output thresholded at T, e.g. mask@0.3 for a probability map) or "
                        "BOXES=boxes@SCORES>T (mean IoU of the boxes whose reference score is above T); the metric "
                        "must reach 1 - --max-drop; OUTPUT=KIND for one output (repeatable)")
    p.add_argument("--const", action="append", default=None, metavar="NAME=VALUE",
                   help="an input that is constant in deployment (a sample rate, a mode flag), frozen to VALUE "
                        "before converting; If branches on it fold away (repeatable)")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="use this rung of each backend's conversion ladder only (default, raw, ...: see "
                        "docs/architecture.md); default: climb the ladder until a rung converts and verifies")
    p.add_argument("--force", action="store_true", help="overwrite existing artifacts")
    p.add_argument("--keep-workdir", action="store_true", help="keep each converter's scratch folder for debugging")
    p.add_argument("--keep-inaccurate", action="store_true",
                   help="keep an artifact that converted but failed verification (marked failing in its manifest; "
                        "exit code stays 1) so `edgekit check --bisect` can find the diverging node")
    p.add_argument("--data", action="append", default=None, metavar="PATH",
                   help="verification inputs: image files/folders (through the preprocessing) or .npy/.npz")
    p.add_argument("--samples", type=int, default=2, help="verification samples (default 2)")
    p.add_argument("--labels", default=None, help="a text file of class labels, one per line, for the manifest")
    p.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    add_preprocessing_args(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from pathlib import Path

    from ..errors import EdgekitError
    from ..fsutil import check_output_files

    check_output_files(args, ("json",))
    from ..exporter import export

    labels = None
    if args.labels:
        if not Path(args.labels).is_file():
            raise EdgekitError(f"{args.labels}: no such labels file")
        labels = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
    if (args.target == "mediapipe") != (args.task is not None):
        raise EdgekitError("--task goes with --target mediapipe (a MediaPipe Tasks model), and that target needs "
                           "--task image_classifier|object_detector|face_detector")
    if args.anchors is not None and args.target != "mediapipe":
        raise EdgekitError("--anchors goes with --target mediapipe --task object_detector (a raw SSD head)")
    if args.target == "mediapipe":
        from ..mediapipe import export_tasks

        unused = [flag for flag, given in (("--precision", args.precision not in (None, "fp32")),
                                           ("--dynamic", args.dynamic), ("--calib", args.calib),
                                           ("--const", args.const), ("--recipe", args.recipe)) if given]
        if unused:
            raise EdgekitError(f"--target mediapipe exports an fp32 TFLite model with static shapes; leave out "
                               f"{', '.join(unused)}")

        export = export_tasks
    with status("preparing") as update:
        results = call_with(export, args, preprocessing=preprocessing_from_args(args), labels=labels,
                            progress=lambda fmt, stage: update(f"[{fmt}] {stage}"))
    results = results if isinstance(results, list) else [results]
    print_results(results, Path(args.model).name)
    if args.json:
        from ..fsutil import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps([result_dict(r) for r in results], indent=2) + "\n")
    return 0 if all(r.ok for r in results) else 1


def _fraction(text: str) -> float:
    """'1%' or '0.01' -> 0.01."""
    import argparse

    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a fraction such as 0.01 or 1%") from None


def _gate(v) -> str:
    """The export table's gate column: the output whose task metric dropped most, as `kind value`."""
    judged = [o for o in v.outputs if o.metric] if v else []
    if not judged:
        return "-"
    o = max(judged, key=lambda o: o.drop)
    return f"{o.metric} {fmt_float(o.metric_value)}"


def result_dict(r) -> dict:
    import dataclasses

    return {"format": r.format, "status": r.status, "path": str(r.path) if r.path else None, "error": r.error,
            "seconds": round(r.seconds, 3), "workdir": str(r.workdir) if r.workdir else None,
            "recipe": r.recipe, "conversions": r.conversions, "attempts": r.attempts,
            "manifest": dataclasses.asdict(r.manifest) if r.manifest else None}


def print_results(results, model_name: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    table = Table(title=f"edgekit export: {model_name}", title_justify="left")
    numeric = ("worst cosine", "max abs err", "gate metric", "export s", "tries")
    judged = any(o.metric for r in results if r.manifest and r.manifest.verification
                 for o in r.manifest.verification.outputs)
    for col in ("format", "status", "recipe", "tries", "precision", "worst cosine", "max abs err",
                *(("gate metric",) if judged else ()), "export s", "artifact"):
        table.add_column(col, justify="right" if col in numeric else "left")
    for r in results:
        v = r.manifest.verification if r.manifest else None
        cos = min((o.cosine for o in v.outputs), default=None) if v else None
        err = max((o.max_abs for o in v.outputs), default=None) if v else None
        style = {"ok": "green", "inaccurate": "yellow", "failed": "red"}[r.status]
        prec = f"{r.manifest.precision.weights}/{r.manifest.precision.compute}" if r.manifest else "-"
        gate = (_gate(v),) if judged else ()
        table.add_row(r.format, f"[{style}]{r.status}[/]", r.recipe or "-", str(r.conversions), prec,
                      fmt_float(cos), fmt_float(err), *gate,
                      f"{r.seconds:.1f}", escape(str(r.path)) if r.path else "-")
    con.print(table)
    for r in results:
        if r.manifest and r.manifest.verification:
            v = r.manifest.verification
            if len(v.outputs) > 1:
                for o in v.outputs:
                    task = f" {o.metric} {fmt_float(o.metric_value)}" if o.metric else ""
                    con.print(f"  {r.format} {escape(o.name)}: cosine {fmt_float(o.cosine)} "
                              f"max abs {fmt_float(o.max_abs)}{escape(task)}")
    for r in results:
        t = r.manifest.tasks if r.manifest else None
        if t:
            v = t["verification"]
            con.print(f"  MediaPipe Tasks {t['api']} (mediapipe {t['mediapipe']}): "
                      f"{'agrees' if v['passed'] else 'DISAGREES'} with edgekit on {v['images']} image(s) "
                      f"({v['criterion']})", markup=False)
    first = next((r for r in results if r.manifest and r.manifest.verification), None)
    if first:
        con.print(f"verified on: {first.manifest.verification.inputs}", markup=False)
    for r in results:
        if r.error:
            con.print(r.error, style="red", markup=False)
            if r.log_tail:
                con.print(r.log_tail, markup=False, style="dim")
            if r.workdir:
                con.print(f"  scratch folder kept: {r.workdir}")
