"""ncnn int8 (edgekit.quantize) against ncnn fp32 on PP-OCR cls / rec / det.

Each model is exported to ncnn fp32 with edgekit.export, quantized with edgekit.quantize.ncnn_int8 on rendered
text images (calibration set), and measured on other rendered images (held out): cosine of each output to
ONNX Runtime fp32, top-1 agreement (cls: the class; rec: per time step), int8/fp32 file size, and the ratio of
median latencies at --threads (and --also-threads), fp32 and int8 runs interleaved one by one on the same input.
The int8 net is loaded with opt.use_int8_inference = True (edgekit's ncnn runner sets it False).

    python benchmarks/ncnn_int8.py [--models ppocr-cls,ppocr-rec,ppocr-det] [--method kl] [--threads 2]
                                   [--keep slower,first,last] [--iters 40] [--also-threads 1]
                                   [--no-requantize] [--json benchmarks/results/ncnn_int8.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit import export  # noqa: E402
from edgekit.fixtures import LINES, OCR_MODELS, render_text_line, render_text_page, write_text_images  # noqa: E402
from edgekit.harness.inputs import load_samples  # noqa: E402
from edgekit.manifest import Manifest  # noqa: E402
from edgekit.quantize import calibrate, ncnn_int8, profile  # noqa: E402
from edgekit.quantize.ncnn_model import NcnnModel  # noqa: E402
from edgekit.quantize.ncnn_rewrite import gemms_to_innerproducts  # noqa: E402

HELD_OUT_LINES = ["Quarterly report 2025", "Shipping to Berlin", "Order #88213 paid", "Call +49 30 1234",
                  "Warehouse B aisle 7", "Best before 03/2027"]


def write_held_out(folder: Path, kind: str, rotate_half: bool) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(HELD_OUT_LINES):
        if kind == "text-page":
            img = render_text_page(HELD_OUT_LINES[i:] + LINES[:4] + HELD_OUT_LINES[:i], seed=100 + i)
        else:
            img = render_text_line(text)
            if rotate_half and i % 2:
                img = img[::-1, ::-1]
        p = folder / f"held_{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


def write_calibration(folder: Path, kind: str, count: int, rotate_half: bool) -> list[Path]:
    import cv2

    paths = write_text_images(folder, kind, count)
    if rotate_half:  # the cls model tells upright from upside-down lines: calibrate on both
        for p in paths[1::2]:
            img = cv2.imread(str(p))
            cv2.imwrite(str(p), img[::-1, ::-1])
    return paths


def ort_outputs(onnx_path: Path, samples: list[dict]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return [sess.run(None, s) for s in samples]


def ncnn_outputs(net, feeds: list[dict], outputs: list[str]) -> list[list[np.ndarray]]:
    return [[calibrate.extract(net, f, outputs)[o] for o in outputs] for f in feeds]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def top1(ref: np.ndarray, got: np.ndarray) -> tuple[int, int]:
    """(agreeing, total) argmax over the last axis (cls: one decision; rec: one per time step)."""
    r = np.asarray(ref).reshape(-1, ref.shape[-1]).argmax(-1)
    g = np.asarray(got).reshape(-1, ref.shape[-1]).argmax(-1)
    return int((r == g).sum()), int(r.size)


def interleaved(run_a, run_b, iters: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        run_a()
        run_b()
    ta, tb = [], []
    for i in range(iters):
        for run, acc in ((run_a, ta), (run_b, tb)) if i % 2 == 0 else ((run_b, tb), (run_a, ta)):
            t = time.perf_counter()
            run()
            acc.append(time.perf_counter() - t)
    return ta, tb


def keep_layers(model: NcnnModel, keep: list[str]) -> set[str]:
    """'first' / 'last' = the first / last quantizable layer (after the Gemm rewrite quantize does),
    'depthwise' = every ConvolutionDepthWise (ncnn's x86 int8 depthwise is slower than its fp32 one);
    other entries are layer names ('slower' is handled in measure: edgekit.quantize.profile)."""
    gemms_to_innerproducts(model)
    q = model.quantizable()
    names = set()
    for k in keep:
        if k == "depthwise":
            names |= {l.name for l in q if l.type == "ConvolutionDepthWise"}
        else:
            names.add(q[0].name if k == "first" else q[-1].name if k == "last" else k)
    return names


def measure(name: str, method: str, threads: int, keep: list[str], iters: int, work: Path,
            calib_count: int, extra_threads: list[int] = (), float_weights: str = "fp32",
            requantize: bool = True) -> dict:
    fx = OCR_MODELS[name]
    rotate = name == "ppocr-cls"
    calib = write_calibration(work / f"{name}-calib", fx.kind, calib_count, rotate)
    held = write_held_out(work / f"{name}-held", fx.kind, rotate)
    res = export(fx.path, target="ncnn", out=work / name, input_shapes=[fx.input_shape], data=calib[:2],
                 preprocessing=fx.preprocessing, force=True)[0]
    if not res.ok:
        raise SystemExit(f"{name}: ncnn fp32 export failed: {res.error}")
    man = Manifest.load(res.path)
    param, binf = man.file(res.path, "param"), man.file(res.path, "bin")
    input_names = {s.name: s.backend_name for s in man.inputs}
    outputs = [s.backend_name for s in man.outputs]
    cal_samples = load_samples(calib, man.inputs, fx.preprocessing)
    held_samples = load_samples(held, man.inputs, fx.preprocessing)
    q_param, q_bin = res.path / "model.int8.param", res.path / "model.int8.bin"
    model = NcnnModel.read(param, binf)
    kept = keep_layers(model, [k for k in keep if k != "slower"])
    t = time.perf_counter()
    report = ncnn_int8.quantize(param, binf, q_param, q_bin, cal_samples, input_names, method=method,
                                keep_float=kept, threads=threads, float_weights=float_weights,
                                requantize=requantize)
    speeds = []
    if "slower" in keep:  # time each int8 layer alone (1 thread), as it runs in this int8 model (int8 in where
        # its input arrives int8), and quantize again with the slower ones in float (fusion is recomputed)
        speeds = profile.layer_speeds(param, binf, q_param, q_bin,
                                      ncnn_int8.feeds_for_ncnn(cal_samples[:1], input_names, True)[0])
        kept |= profile.slower_in_int8(speeds)
        report = ncnn_int8.quantize(param, binf, q_param, q_bin, cal_samples, input_names, method=method,
                                    keep_float=kept, threads=threads, float_weights=float_weights,
                                    requantize=requantize)
    quant_s = time.perf_counter() - t

    ref = ort_outputs(fx.path, held_samples)
    feeds = ncnn_int8.feeds_for_ncnn(held_samples, input_names, True)
    net32 = calibrate.fp32_net(param, binf, threads)
    net8 = ncnn_int8.int8_net(q_param, q_bin, threads)
    got32 = ncnn_outputs(net32, feeds, outputs)
    got8 = ncnn_outputs(net8, feeds, outputs)
    row = {"model": name, "method": method, "keep": keep, "keep_float": sorted(kept), "float_weights": float_weights,
           "threads": threads,
           "calibration_images": len(cal_samples), "held_out_images": len(held_samples),
           "quantized_layers": len(report.quantized), "gemm_rewritten": report.gemm_rewritten,
           "requantize": requantize, "requantized": report.requantized,
           "quantize_seconds": round(quant_s, 1),
           "layer_speeds": [{"name": x.name, "type": x.type, "fp32_ms": round(x.fp32_ms, 3),
                             "int8_ms": round(x.int8_ms, 3)} for x in speeds]}
    for oi, spec in enumerate(man.outputs):
        row.setdefault("outputs", []).append({
            "name": spec.name,
            "cosine_int8_vs_ort_min": min(cosine(r[oi], g[oi]) for r, g in zip(ref, got8)),
            "cosine_int8_vs_ort_mean": statistics.mean(cosine(r[oi], g[oi]) for r, g in zip(ref, got8)),
            "cosine_fp32_vs_ort_min": min(cosine(r[oi], g[oi]) for r, g in zip(ref, got32))})
    if name in ("ppocr-cls", "ppocr-rec"):
        agree = [top1(r[0][0], g[0]) for r, g in zip(ref, got8)]
        row["top1_agreement"] = sum(a for a, _ in agree) / sum(n for _, n in agree)
    row["size_fp32_bytes"] = report.fp32_bytes
    row["size_int8_bytes"] = report.int8_bytes
    row["size_ratio"] = report.size_ratio
    net32.clear()
    net8.clear()
    f0 = feeds[0]
    for n in [threads] + [t for t in extra_threads if t != threads]:
        a, b = calibrate.fp32_net(param, binf, n), ncnn_int8.int8_net(q_param, q_bin, n)
        t32, t8 = interleaved(lambda: calibrate.extract(a, f0, outputs), lambda: calibrate.extract(b, f0, outputs),
                              iters)
        a.clear()
        b.clear()
        lat = {"threads": n, "fp32_median_ms": statistics.median(t32) * 1e3,
               "int8_median_ms": statistics.median(t8) * 1e3,
               "ratio_int8_over_fp32": statistics.median(t8) / statistics.median(t32),
               # the machine is shared: the median of back-to-back pairs' ratios is steadier than a ratio of medians
               "ratio_pairwise_median": statistics.median(y / x for x, y in zip(t32, t8)),
               # and the fastest run of each is the one least disturbed by other processes
               "fp32_min_ms": min(t32) * 1e3, "int8_min_ms": min(t8) * 1e3, "ratio_min": min(t8) / min(t32)}
        lat["speedup"] = 1 / lat["ratio_int8_over_fp32"]
        row.setdefault("latency", []).append(lat)
    main_lat = row["latency"][0]
    row["latency_fp32_median_ms"] = main_lat["fp32_median_ms"]
    row["latency_int8_median_ms"] = main_lat["int8_median_ms"]
    row["latency_ratio_int8_over_fp32"] = main_lat["ratio_int8_over_fp32"]
    row["latency_ratio_pairwise_median"] = main_lat["ratio_pairwise_median"]
    row["latency_ratio_min"] = main_lat["ratio_min"]
    row["speedup"] = main_lat["speedup"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ppocr-cls,ppocr-rec,ppocr-det")
    ap.add_argument("--method", default="kl", choices=ncnn_int8.METHODS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", default="", help="layers kept fp32, comma-separated: first, last, depthwise, "
                                               "slower (int8 not faster when timed alone) and/or layer names")
    ap.add_argument("--float-weights", default="fp32", choices=("fp32", "fp16"),
                    help="weights of the layers left in float (fp16: smaller file, still fp32 arithmetic)")
    ap.add_argument("--no-requantize", action="store_true",
                    help="no requantize fusion (every int8 layer takes and gives fp32)")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--also-threads", default="1", help="further thread counts to time (comma-separated)")
    ap.add_argument("--calib", type=int, default=8, help="calibration images per model")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "ncnn_int8.json"))
    args = ap.parse_args(argv)
    keep = [k for k in args.keep.split(",") if k]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekit-int8-") as tmp:
        for name in args.models.split(","):
            rows.append(measure(name, args.method, args.threads, keep, args.iters, Path(tmp), args.calib,
                                [int(t) for t in args.also_threads.split(",") if t], args.float_weights,
                                not args.no_requantize))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"{'model':<10} {'cos int8/ORT (min)':>18} {'top-1':>6} {'size':>6} {'latency':>8} {'pairwise':>8} "
          f"{'min':>6}  (fp32 ms / int8 ms, {args.threads} threads, {args.method}, keep_float={keep or 'none'}, "
          f"float weights {args.float_weights}, requantize fusion {'off' if args.no_requantize else 'on'})")
    for r in rows:
        cos = min(o["cosine_int8_vs_ort_min"] for o in r["outputs"])
        t1 = f"{r['top1_agreement']:.3f}" if "top1_agreement" in r else "-"
        print(f"{r['model']:<10} {cos:>18.4f} {t1:>6} {r['size_ratio']:>6.3f} {r['latency_ratio_int8_over_fp32']:>8.3f}"
              f" {r['latency_ratio_pairwise_median']:>8.3f} {r['latency_ratio_min']:>6.3f}"
              f"  ({r['latency_fp32_median_ms']:.1f} / {r['latency_int8_median_ms']:.1f}, "
              f"{r['speedup']:.2f}x)" + "".join(f"; {l['threads']} thread(s): {l['ratio_int8_over_fp32']:.3f}"
                                                f" pairwise {l['ratio_pairwise_median']:.3f} min {l['ratio_min']:.3f}"
                                                for l in r["latency"][1:]))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    prior = json.loads(out.read_text()) if out.is_file() else {}
    runs = prior.get("runs", []) if isinstance(prior, dict) else []
    key = {"method": args.method, "keep": keep, "float_weights": args.float_weights,
           "requantize": not args.no_requantize}
    runs = [r for r in runs if {k: r.get(k, "fp32" if k == "float_weights" else False if k == "requantize" else None)
                                for k in key} != key]
    runs.append({**key, "threads": args.threads, "rows": rows})
    out.write_text(json.dumps({"benchmark": "ncnn_int8", "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
