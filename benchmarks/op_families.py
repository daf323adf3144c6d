"""Raw converter vs. the current default passes vs. the family's pass, for each op-family model and format.

    python benchmarks/op_families.py [--formats ncnn,mnn,tflite,openvino] [--families crnn,vad,...] [--variants ...]

Each family model (tests/families.py) is exported with `edgekit.export` three ways: `raw` (passes=[]: the
converter sees the shape-fixed model untouched), `default` (passes=None: what the backend declares today) and
`pass` (the family's rewrites; `pass+default` adds the default list after them), and for the Erf families on
tflite `rtpo` (onnx2tf's own `-rtpo Erf`, run directly); `pass-ref` applies the rewrites to the model before
export, so verification compares with ONNX Runtime on the rewritten model (for dequantize-dynamic, whose
result is the float model: it shows the converter is exact, apart from the activation quantization that
separates the rewrite from its quantized source). The streaming VAD model's family passes start with
`freeze-inputs` with sr=16000, applied to the model before export (it takes values, which the
export flow's pass list cannot pass), and its 0-d `sr` input makes export.py crash while stacking calibration
data (`np.concatenate` of 0-d arrays): for those rows the converter is called directly
(`backends.get(fmt).convert`), loaded and compared with ONNX Runtime the same way (`via: backend.convert`).

Prints one line per row and writes benchmarks/results/op_families.json: status (ok / inaccurate / failed),
worst cosine over outputs and samples, the first line of the error, seconds."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import families as F  # noqa: E402

FORMATS = ["ncnn", "mnn", "tflite", "openvino"]


def _freeze16(model):
    from edgekit.onnx.passes import freeze_inputs

    return freeze_inputs.run(model, {"sr": 16000})[0]


def _freeze_k3(model):
    from edgekit.onnx.passes import freeze_inputs

    return freeze_inputs.run(model, {"k": 3})[0]


# name -> (builder, inputs(seed), the family's passes, pre-export model transform for the `pass` variants)
FAMILIES = {
    "scalar": (F.scalar_gain, F.scalar_gain_inputs, ["freeze-inputs"], _freeze_k3),
    "crnn": (F.crnn, F.crnn_inputs, ["rnn-unroll"], None),
    "crnn-torch": (lambda: F.crnn(form="torch"), F.crnn_inputs, ["rnn-unroll"], None),
    "vad": (F.streaming_vad, F.streaming_vad_inputs, ["freeze-inputs", "rnn-unroll", "unit-axis-reshape"],
            _freeze16),
    "quantized": (F.quantized_speech_encoder, F.speech_encoder_inputs, ["dequantize-dynamic", "rnn-unroll"], None),
    "quantized-pooled": (lambda: F.quantized_speech_encoder(lstm=False), F.speech_encoder_inputs,
                         ["dequantize-dynamic"], None),
    "focus": (F.focus_detector, F.focus_inputs, ["strided-slice"], None),
    "subsample": (F.strided_subsample, F.strided_subsample_inputs, ["strided-slice"], None),
    "gelu": (F.gelu_mlp, F.gelu_mlp_inputs, ["erf-gelu"], None),
    "gelu-torch": (lambda: F.gelu_mlp(form="torch"), F.gelu_mlp_inputs, ["erf-gelu"], None),
    "erf-cdf": (F.gaussian_cdf_head, F.gaussian_cdf_inputs, ["erf-gelu"], None),
    "attention": (F.attention_block, F.attention_inputs, ["simplify"], None),
}


def first_line(text: str | None) -> str | None:
    if not text:
        return None
    return text.strip().splitlines()[0][:300]


def worst_cosine(manifest) -> float | None:
    if manifest is None or manifest.verification is None:
        return None
    return float(min(o.cosine for o in manifest.verification.outputs))


def export_row(model, feeds, fmt, passes, work: Path):
    """edgekit.export on `model` with `passes`; verification on `feeds` (a list of input dicts)."""
    from edgekit import export

    path = work / "model.onnx"
    onnx.save(model, str(path))
    names = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    data = []
    for k, f in enumerate(feeds):
        p = work / f"sample{k}.npz"
        np.savez(p, **{n: v for n, v in f.items() if n in names})
        data.append(p)
    start = time.perf_counter()
    (r,) = export(path, target=fmt, out=work / "out", passes=passes, data=data, force=True, keep_inaccurate=True)
    maxabs = max(o.max_abs for o in r.manifest.verification.outputs) if r.manifest else None
    return {"status": r.status, "cosine": worst_cosine(r.manifest), "max_abs": maxabs, "error": first_line(r.error),
            "seconds": round(time.perf_counter() - start, 1), "via": "export",
            "passes_applied": r.manifest.passes if r.manifest else None}


def rtpo_row(model, feeds, work: Path) -> dict:
    """onnx2tf's own answer to FlexErf, `-rtpo Erf` (replace Erf by Abramowitz-Stegun 7.1.26 in TF ops), run
    directly (edgekit's TFLite backend does not pass the flag) and checked against ONNX Runtime like export."""
    import subprocess

    from ai_edge_litert.interpreter import Interpreter

    from edgekit.harness import compare
    from tests.onnx.passes._helpers import ort_run

    start = time.perf_counter()
    onnx.save(model, str(work / "model.onnx"))
    proc = subprocess.run([sys.executable, "-m", "onnx2tf", "-i", "model.onnx", "-o", "saved", "-n", "-rtpo", "Erf"],
                          cwd=work, capture_output=True, text=True)
    tfl = work / "saved" / "model_float32.tflite"
    if not tfl.is_file():
        return {"status": "failed", "error": first_line(proc.stdout[-300:]), "via": "onnx2tf -rtpo Erf",
                "seconds": round(time.perf_counter() - start, 1)}
    names = [o.name for o in model.graph.output]
    refs, outs = [], []
    for f in feeds:
        it = Interpreter(model_path=str(tfl))
        it.allocate_tensors()
        (inp,) = it.get_input_details()
        it.set_tensor(inp["index"], next(iter(f.values())))
        it.invoke()
        (out,) = it.get_output_details()
        outs.append({names[0]: it.get_tensor(out["index"])})
        refs.append({names[0]: ort_run(model, f)[0]})
    checks = compare.compare_outputs(refs, outs, dict(compare.DEFAULT_TOLERANCES["fp32"]))
    return {"status": "ok" if all(c.passed for c in checks) else "inaccurate", "via": "onnx2tf -rtpo Erf",
            "cosine": float(min(c.cosine for c in checks)), "max_abs": float(max(c.max_abs for c in checks)),
            "error": None, "seconds": round(time.perf_counter() - start, 1)}


def measure(family: str, fmt: str, variant: str) -> dict:
    build, inputs, fam_pass, transform = FAMILIES[family]
    if variant == "rtpo":
        if fmt != "tflite" or fam_pass != ["erf-gelu"]:
            return {"status": "n/a", "error": "-rtpo Erf is an onnx2tf flag, measured on the Erf families"}
        with tempfile.TemporaryDirectory(prefix=f"opfam-{family}-rtpo-") as d:
            return rtpo_row(build(), [inputs(seed) for seed in range(2)], Path(d))
    model = build()
    feeds = [inputs(seed) for seed in range(2)]
    passes = {"raw": [], "default": None}.get(variant)
    if variant in ("pass", "pass+default"):
        from edgekit import backends

        names = [p for p in fam_pass if p != "freeze-inputs"]  # freeze-inputs takes values: applied below
        if transform is not None:
            model = transform(model)
        passes = names + ([] if variant == "pass" else [p for p in list(backends.get(fmt).passes) if p not in names])
    if variant == "pass-ref":  # the family's rewrites applied to the model itself: the reference is the rewrite
        from edgekit.onnx import passes as passes_mod

        if transform is not None:
            model = transform(model)
        model, _ = passes_mod.apply(model, [p for p in fam_pass if p != "freeze-inputs"])
        passes = []
    with tempfile.TemporaryDirectory(prefix=f"opfam-{family}-{fmt}-") as d:
        work = Path(d)
        try:
            return export_row(model, feeds, fmt, passes, work)
        except Exception as e:  # an EdgekitError before conversion
            return {"status": "failed", "error": first_line(f"{type(e).__name__}: {e}"), "via": "export"}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--variants", default="raw,default,pass")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "op_families.json"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for family in args.families.split(","):
        for fmt in args.formats.split(","):
            for variant in args.variants.split(","):
                row = measure(family, fmt, variant)
                row["pass"] = FAMILIES[family][2] if variant.startswith("pass") else None
                row["exported_passes"] = None if variant in ("raw", "rtpo", "pass-ref") else row.get("passes_applied")
                results.setdefault(family, {}).setdefault(fmt, {})[variant] = row
                cos = row.get("cosine")
                print(f"{family:10s} {fmt:9s} {variant:13s} {row['status']:10s} "
                      f"{'' if cos is None else f'{cos:.6f}':9s} {row.get('seconds', '')!s:>6s}s  "
                      f"{row.get('error') or ''}", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return results


if __name__ == "__main__":
    main()
