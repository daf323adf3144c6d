"""fp32 vs fp16 vs int8 per model and format: size, latency, accuracy drop, layers kept float, gate verdict.

Every precision a format's backend offers (`Backend.precisions`; the others are recorded "not available") is
exported through `edgekit.export`: int8 calibrated on rendered text (PP-OCR) or face frames (BlazeFace) and
gated on held-out inputs (`data=`; an artifact the gate refuses is kept with keep_inaccurate and measured too, so
its drop is on record). Then, per model and format, the precisions' runners are timed interleaved in one run
(edgekit.harness.latency.measure, the loop of runner_overhead.py) at each thread count, and measured on the
held-out inputs against ONNX Runtime fp32: worst output cosine drop, and the task metric:
- ppocr-cls: top-1 agreement with ONNX Runtime fp32;
- ppocr-rec / ppocr-det: character accuracy of the OCR app's chain (text_boxes -> orient_lines -> read_lines,
  the functions edgekit.apps.TextReader calls) on the sample video's frames (tools/make_sample_media.py) with
  this artifact in its place and ONNX Runtime fp32 for the other two models; ncnn also with int8 det and rec;
- blazeface: the best anchor's decoded box IoU against ONNX Runtime fp32 on the face frames.
Models take the app graphs' input shapes, preprocessing and gate metric (apps/ocr/graph.yaml, apps/face/graph.yaml:
det mask@0.3, cls and rec top1, BlazeFace mask@0 on its scores and boxes@classificators>0 on its regressors).

    python benchmarks/quantization.py [--quick] [--models ...] [--formats ncnn,mnn,openvino,onnx,tflite]
                                      [--threads 1,2] [--json benchmarks/results/quantization.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edgekit import export, load  # noqa: E402
from edgekit.apps import TextReader  # noqa: E402
from edgekit.apps.graphs import AppGraph  # noqa: E402
from edgekit.backends import get as get_backend  # noqa: E402
from edgekit.fixtures import OCR_MODELS, render_text_line, write_text_images  # noqa: E402
from edgekit.harness import latency  # noqa: E402
from edgekit.harness.task_metrics import char_accuracy  # noqa: E402
from edgekit.manifest import Manifest, Preprocessing  # noqa: E402
from edgekit.pipeline import imageops  # noqa: E402
from edgekit.quantize.repair import cosine  # noqa: E402

APP_NODES = {"ppocr-cls": "classifier", "ppocr-rec": "recognizer", "ppocr-det": "detector"}
HELD_OUT_LINES = ["Quarterly report 2025", "Shipping to Berlin", "Order #88213 paid", "Call +49 30 1234",
                  "Warehouse B aisle 7", "Best before 03/2027"]
QUICK = {"models": "ppocr-cls,ppocr-rec,ppocr-det", "formats": "ncnn,onnx", "frames": 4, "calib": 16}


class Model:
    """A runner with the input spec and preprocessing the OCR app feeds it (run_images without the node)."""

    def __init__(self, path: Path, threads: int | None = None):
        self.runner = load(path, threads=threads)
        self.spec = self.runner.inputs[0]
        self.pre = Manifest.load(path).preprocessing

    def images(self, images: list) -> tuple[list[dict], list]:
        outs, ts = [], []
        for img in images:
            x, t = imageops.prepare(img, self.spec, self.pre)
            outs.append(self.runner({self.spec.name: x}))
            ts.append(t)
        return outs, ts

    def close(self) -> None:
        self.runner.close()


class OcrChain:
    """The OCR app's chain (edgekit.apps.TextReader: det -> cls -> rec, ONNX Runtime fp32) on the sample frames,
    with any of its models replaced by an artifact."""

    def __init__(self, cache: Path):
        self.cache = cache

    def char_accuracy(self, frames: list, truth: list[str], **swap: Path) -> float:
        """OCR character accuracy (edgekit.harness.task_metrics) over the frames, `swap`: model -> artifact."""
        artifacts = {APP_NODES[k.replace("_", "-")]: v for k, v in swap.items()}
        with TextReader(backend="onnx", cache=self.cache, artifacts=artifacts) as reader:
            reads = ["".join(line.text for line in reader.process(f)) for f in frames]
        return char_accuracy(reads, ["".join(truth)] * len(frames))


def ocr_sources(graph: AppGraph, name: str) -> tuple[Path, str, Preprocessing, object]:
    """(model, input shape, preprocessing, gate metric) as the OCR app's graph names them."""
    opts = graph.options(APP_NODES[name], "inference")
    return OCR_MODELS[name].path, opts["input_shape"], Preprocessing(**opts["preprocessing"]), opts.get("metric")


def write_lines(folder: Path, texts: list[str], rotate_half: bool) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        img = render_text_line(text)
        if rotate_half and i % 2:
            img = img[::-1, ::-1]
        paths.append(folder / f"line_{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
    return paths


def write_frames(folder: Path, frames: list) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"frame_{i}.png" for i in range(len(frames))]
    for p, f in zip(paths, frames):
        cv2.imwrite(str(p), f)
    return paths


def data_for(name: str, work: Path, frames: list, calib_count: int) -> tuple[list[Path], list[Path]]:
    """(calibration images, held-out images) for one model; none of the held-out text is calibrated on."""
    import cv2

    if name == "ppocr-det":
        return write_text_images(work / "calib-page", "text-page", calib_count), write_frames(work / "frames", frames)
    if name == "blazeface":
        from make_sample_media import face_frames

        faces = face_frames(calib_count + 4)
        return (write_frames(work / "face-calib", faces[::2][:calib_count]),
                write_frames(work / "face-held", faces[1::2][:4]))
    calib = write_text_images(work / f"calib-{name}", "text-line", calib_count)
    if name == "ppocr-cls":  # the classifier tells upright from upside-down lines: calibrate on both
        for p in calib[1::2]:
            cv2.imwrite(str(p), cv2.imread(str(p))[::-1, ::-1])
    return calib, write_lines(work / f"held-{name}", HELD_OUT_LINES, name == "ppocr-cls")


def artifact_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file() and f.suffix != ".json")


def ort_reference(onnx_path: Path, model: Model, images: list) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return [sess.run(None, {model.spec.name: imageops.prepare(img, model.spec, model.pre)[0]}) for img in images]


def _corners(v: np.ndarray) -> tuple:
    """(x0, y0, x1, y1) of a (cx, cy, w, h) box."""
    return v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2, v[1] + v[3] / 2


def blazeface_iou(ref: list, got: list) -> float:
    """IoU of the best-scoring anchor's raw box (the regressor's first 4 values) between the two runs."""
    ious = []
    for r, g in zip(ref, got):
        reg, score = (r[0], r[1]) if r[0].shape[-1] > r[1].shape[-1] else (r[1], r[0])
        greg = g[0] if g[0].shape == reg.shape else g[1]
        k = int(np.argmax(score.reshape(-1)))
        a, b = reg.reshape(-1, reg.shape[-1])[k, :4], greg.reshape(-1, reg.shape[-1])[k, :4]
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = (_corners(v) for v in (a, b))
        inter = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
        union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
        ious.append(inter / union if union > 0 else 0.0)
    return float(np.mean(ious))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"a subset: {QUICK}")
    ap.add_argument("--models", default="ppocr-cls,ppocr-rec,ppocr-det,blazeface")
    ap.add_argument("--formats", default="ncnn,mnn,openvino,onnx,tflite")
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--frames", type=int, default=8, help="sample-video frames for the OCR chain and det gate")
    ap.add_argument("--calib", type=int, default=32, help="calibration images per model")
    ap.add_argument("--max-drop", type=float, default=0.01)
    ap.add_argument("--min-seconds", type=float, default=3.0, help="timed seconds per subject and thread count")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "quantization.json"))
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            if ap.get_default(k) == getattr(args, k):
                setattr(args, k, v)
    from make_sample_media import OCR_LINES, ocr_frames

    graph = AppGraph("ocr", "graph.yaml")
    threads = [int(t) for t in args.threads.split(",") if t]
    frames = ocr_frames(args.frames)
    report = {"benchmark": "quantization", "environment": latency.environment(), "max_drop": args.max_drop,
              "threads": threads, "frames": args.frames, "calibration_images": args.calib, "rows": []}
    tmp = tempfile.TemporaryDirectory(prefix="edgekit-quant-")
    work = Path(tmp.name)
    models = [m for m in args.models.split(",") if m]
    formats = [f for f in args.formats.split(",") if f]
    sources = {}
    for name in models:
        if name == "blazeface":
            from edgekit.fixtures import MEDIAPIPE_MODELS, mediapipe_onnx

            fx = MEDIAPIPE_MODELS["blazeface-short"]
            metric = AppGraph("face", "graph.yaml").options("detector", "inference").get("metric")
            sources[name] = (mediapipe_onnx("blazeface-short", work / "onnx"), fx.input_shape, fx.preprocessing,
                             metric)
        else:
            sources[name] = ocr_sources(graph, name)
    chain = OcrChain(work / "cache")  # the fp32 ONNX chain every OCR variant is put into
    report["ocr_reference_char_accuracy"] = chain.char_accuracy(frames, OCR_LINES)
    print(f"OCR chain, ONNX Runtime fp32: {report['ocr_reference_char_accuracy']:.2f}% characters", flush=True)
    int8_ocr = {}  # ncnn int8 det / rec paths, for the chain with both
    for name in models:
        src, shape, pre, metric = sources[name]
        calib, held = data_for(name, work / "data", frames, args.calib)
        import cv2

        held_images = [cv2.imread(str(p)) for p in held]
        for fmt in formats:
            backend = get_backend(fmt)
            rows = {}
            for prec in ("fp32", "fp16", "int8"):
                row = {"model": name, "format": fmt, "precision": prec}
                rows[prec] = row
                if prec not in args.precisions.split(","):
                    continue
                if prec not in backend.precisions:
                    row["status"] = "not available"
                    continue
                t0 = time.perf_counter()
                res = export(src, target=fmt, out=work / "art" / name / prec, input_shapes=[shape] if shape else None,
                             precision=prec, data=held, preprocessing=pre, max_drop=args.max_drop, force=True,
                             metric=metric if prec != "fp32" else None,
                             keep_inaccurate=True, **({"calib": calib} if prec == "int8" else {}))[0]
                row["export_seconds"] = round(time.perf_counter() - t0, 1)
                row["status"] = res.status
                if res.path is None or res.manifest is None:
                    row["error"] = (res.error or "")[-300:]
                    continue
                row["path"] = res.path
                row["bytes"] = artifact_bytes(res.path)
                q = (res.manifest.precision.quantization or {}) if res.manifest.precision else {}
                if q:
                    row.update(layers_int8=q.get("layers_int8"), layers_kept_float=len(q.get("layers_kept_float", [])),
                               calibration_drop=q.get("calibration_drop"), rounds=len(q.get("rounds", [])))
                if not res.ok:
                    row["error"] = (res.error or "")[-300:]
            live = {p: r for p, r in rows.items() if "path" in r}
            rows = {p: r for p, r in rows.items() if "status" in r}
            fp32_bytes = rows.get("fp32", {}).get("bytes")
            for p, r in live.items():
                m = Model(r["path"])
                ref = ort_reference(src, m, held_images)
                got = [[o for o in m.runner({m.spec.name: imageops.prepare(img, m.spec, m.pre)[0]}).values()]
                       for img in held_images]
                r["cosine_drop"] = round(max(1 - cosine(a, b) for rr, gg in zip(ref, got) for a, b in zip(rr, gg)), 6)
                if name == "ppocr-cls":
                    r["top1_agreement"] = float(np.mean([np.argmax(a) == np.argmax(b) for rr, gg in zip(ref, got)
                                                         for a, b in zip(rr, gg)]))
                elif name == "blazeface":
                    r["box_iou"] = round(blazeface_iou(ref, got), 4)
                else:
                    swap = {name.replace("-", "_"): r["path"]}
                    r["char_accuracy"] = round(chain.char_accuracy(frames, OCR_LINES, **swap), 2)
                if fp32_bytes:
                    r["size_ratio"] = round(r["bytes"] / fp32_bytes, 4)
                m.close()
            for n in threads:
                loaded = {p: Model(r["path"], threads=n) for p, r in live.items()}
                feeds = {p: {m.spec.name: imageops.prepare(held_images[0], m.spec, m.pre)[0]}
                         for p, m in loaded.items()}
                subjects = {p: (lambda m=m, f=feeds[p]: m.runner(f)) for p, m in loaded.items()}
                plan = latency.TimingPlan(warmup=3, iterations=20, min_seconds=args.min_seconds, seed=n)
                measured, _ = latency.measure(subjects, plan)
                med = {p: latency.summarize(measured[p].samples).median for p in loaded}
                for p, r in live.items():
                    r.setdefault("latency_ms", {})[str(n)] = round(med[p], 3)
                    if "fp32" in med:
                        r.setdefault("speedup_vs_fp32", {})[str(n)] = round(med["fp32"] / med[p], 3)
                for m in loaded.values():
                    m.close()
            for r in rows.values():
                report["rows"].append(r)
                print(json.dumps({k: v for k, v in r.items() if k != "path"}), flush=True)
                if fmt == "ncnn" and r is rows["int8"] and name in ("ppocr-det", "ppocr-rec") and "path" in r:
                    int8_ocr[name.replace("-", "_")] = r["path"]
                r.pop("path", None)
    if len(int8_ocr) == 2:  # ncnn int8 det and rec together in the chain
        report["ncnn_int8_det_and_rec_char_accuracy"] = round(chain.char_accuracy(frames, OCR_LINES, **int8_ocr), 2)
        print(f"OCR chain, ncnn int8 det + rec: {report['ncnn_int8_det_and_rec_char_accuracy']:.2f}%")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(table(report["rows"], threads))
    tmp.cleanup()
    return 0


def table(rows: list[dict], threads: list[int]) -> str:
    """The README's Markdown table."""
    head = ("| model | format | precision | size vs fp32 | speed-up vs fp32 (" + " / ".join(f"{t}T" for t in threads)
            + ") | cosine drop | task metric | int8 / float layers | gate |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if r["status"] == "not available":
            lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | not available | | | | | |")
            continue
        metric = next((f"{k.replace('_', ' ')} {r[k]}" for k in ("char_accuracy", "top1_agreement", "box_iou")
                       if k in r), "")
        sp = " / ".join(f"{r.get('speedup_vs_fp32', {}).get(str(t), float('nan')):.2f}" for t in threads)
        layers = f"{r['layers_int8']} / {r['layers_kept_float']}" if "layers_int8" in r else ""
        lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | {r.get('size_ratio', '')} | {sp} | "
                     f"{r.get('cosine_drop', '')} | {metric} | {layers} | {r['status']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
