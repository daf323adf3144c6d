"""The conversion matrix: every model of the public corpus x every edge format through `edgekit.export`, each
artifact checked against ONNX Runtime fp32 on realistic inputs (rendered text for the PP-OCR models, scikit-
image's astronaut photo, whole or cropped to the face / an eye, for the MediaPipe models), once with the raw
converter (recipe `raw`) and once with edgekit's conversion ladder, side by side.

    python benchmarks/conversion_matrix.py                          # all groups, raw and edgekit
    python benchmarks/conversion_matrix.py --group fixtures --mode edgekit
    python benchmarks/conversion_matrix.py --models ppocr-det --formats ncnn

Groups: `fixtures` (the 7 models the tests use), `more` (PP-OCRv6 det/rec, the MediaPipe back-camera and sparse
full-range detectors), `families` (the op-family models of tests/families.py, built with the ONNX helper API to
behave like real ones: a CRNN with a bidirectional LSTM in two exporters' forms, a streaming VAD with an `If` on a
0-d sample rate (exported with `const` sr=16000, as deployed), dynamically quantized LSTM and pooled encoders, a
Focus-layer detector, GELU MLPs in two forms, an attention block with LayerNorm as ReduceMean/Pow/Sqrt; each given
two samples of the inputs it really sees). Per cell and mode: status (ok / inaccurate / failed), worst cosine over
outputs and samples, max abs error, export seconds (conversion + loading + verification), conversions, the recipe
that won and the passes it applied. The MediaPipe .tflite files are brought to ONNX with `edgekit import` first."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ["ncnn", "mnn", "tflite", "openvino"]


ROOT = Path(__file__).resolve().parents[1]


def groups() -> dict[str, dict]:
    from edgekit import fixtures

    return {"fixtures": {**fixtures.OCR_MODELS, **fixtures.MEDIAPIPE_MODELS},
            "more": {**fixtures.OCR_V6_MODELS, **fixtures.MEDIAPIPE_MORE_MODELS},
            "families": family_models()}


def family_models() -> dict:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import families

    return dict(families.MATRIX)


def corpus() -> dict:
    return {name: fx for group in groups().values() for name, fx in group.items()}


def model_file(name: str, cache: Path) -> Path:
    from edgekit import fixtures

    fx = corpus()[name]
    return fixtures.mediapipe_onnx(name, cache) if fx.path.suffix == ".tflite" else fx.path


def family_files(name: str, cache: Path) -> tuple[Path, list[Path], dict | None]:
    """A family model saved as .onnx, two samples of its inputs as .npz (constant inputs included, as a
    user's recorded data would have them), and the inputs it is exported with as constants."""
    import numpy as np
    import onnx

    build, inputs, const = family_models()[name]
    folder = cache / f"family-{name}"
    path = folder / "model.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(build(), str(path))
        for seed in range(2):
            np.savez(folder / f"sample{seed}.npz", **inputs(seed=seed))
    return path, sorted(folder.glob("sample*.npz")), const


def run_cell(name: str, fmt: str, cache: Path, out: Path, mode: str, keep_workdir: bool) -> dict:
    from edgekit import export, fixtures

    fx = corpus()[name]
    start = time.perf_counter()
    cell = {"model": name, "format": fmt, "mode": mode}
    recipe = "raw" if mode == "raw" else None
    try:
        if isinstance(fx, tuple):  # a family model: its own inputs, no preprocessing
            path, data, const = family_files(name, cache)
            (r,) = export(path, target=fmt, out=out / mode, data=[str(d) for d in data], const=const, force=True,
                          keep_workdir=keep_workdir, recipe=recipe)
        else:
            images = fixtures.write_images(cache / f"{name}-data", fx.kind, 2)
            (r,) = export(model_file(name, cache), target=fmt, out=out / mode, input_shapes=[fx.input_shape],
                          data=images, preprocessing=fx.preprocessing, force=True, keep_workdir=keep_workdir,
                          recipe=recipe)
    except Exception as e:  # bad input for this model: a cell, not a crash of the whole matrix
        return {**cell, "status": "error", "error": f"{type(e).__name__}: {e}", "conversions": 0,
                "seconds": round(time.perf_counter() - start, 2), "passes": [], "recipe": None}
    v = r.manifest.verification if r.manifest else None
    basis = v.tolerances.get("basis") if v else None
    return {**cell, "status": r.status, **({"tolerance": basis} if basis else {}),
            "worst_cosine": min(o.cosine for o in v.outputs) if v else None,
            "max_abs": max(o.max_abs for o in v.outputs) if v else None,
            "seconds": round(r.seconds, 2), "conversions": r.conversions, "recipe": r.recipe,
            "passes": r.manifest.passes if r.manifest else [], "error": r.error,
            "workdir": str(r.workdir) if r.workdir else None}


def _cell_text(c: dict | None) -> str:
    if c is None:
        return "-"
    if c["status"] == "ok":
        return f"ok {c['worst_cosine']:.6f}"
    if c["status"] == "inaccurate":
        return f"WRONG cos {c['worst_cosine']:.4f}"
    return "FAIL"


def table(cells: list[dict]) -> str:
    """A Markdown table: one row per model, per format `raw -> edgekit (conversions, seconds, recipe)`."""
    models = list(dict.fromkeys(c["model"] for c in cells))
    formats = list(dict.fromkeys(c["format"] for c in cells))
    by = {(c["model"], c["format"], c["mode"]): c for c in cells}
    lines = ["| model | " + " | ".join(formats) + " |", "|---|" + "---|" * len(formats)]
    for m in models:
        row = []
        for f in formats:
            raw, ek = by.get((m, f, "raw")), by.get((m, f, "edgekit"))
            text = _cell_text(ek) if ek else _cell_text(raw)
            if raw and ek:
                text = f"{_cell_text(raw)} -> {_cell_text(ek)}"
            if ek:
                recipe = f", {ek['recipe']}" if ek["recipe"] else ""
                text += f" ({ek['conversions']} conv, {ek['seconds']:.0f} s{recipe})"
            row.append(text)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    lines.append("")
    for mode in ("raw", "edgekit"):
        mine = [c for c in cells if c["mode"] == mode]
        if mine:
            ok = sum(c["status"] == "ok" for c in mine)
            lines.append(f"{mode}: {ok}/{len(mine)} correct (cosine >= 0.999 on every output, fp32)")
    worse = [f"{c['model']}/{c['format']}" for c in cells if c["mode"] == "edgekit" and c["status"] != "ok"
             and by.get((c["model"], c["format"], "raw"), {}).get("status") == "ok"]
    lines.append(f"cells where edgekit is worse than the raw converter: {', '.join(worse) or 'none'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", default=None, help=f"one corpus group ({', '.join(groups())}; default: all)")
    ap.add_argument("--models", default=None, help="comma list (default: the group's, or all)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma list (default: all 4)")
    ap.add_argument("--mode", choices=["both", "raw", "edgekit"], default="both",
                    help="the raw converter (recipe raw), edgekit's ladder, or both side by side (default)")
    ap.add_argument("--json", default=None, help="write the cells here (default: conversion_matrix.json)")
    ap.add_argument("--cache", default=None, help="folder for imported models and images (default: a temp dir)")
    ap.add_argument("--keep-workdir", action="store_true", help="keep each converter's scratch folder")
    ap.add_argument("--update", action="store_true",
                    help="re-run only the given cells and merge them into the existing JSON (table of all)")
    args = ap.parse_args(argv)
    if args.group and args.group not in groups():
        ap.error(f"unknown group {args.group}; known: {', '.join(groups())}")
    default = groups()[args.group] if args.group else corpus()
    models = [m for m in (args.models.split(",") if args.models else default) if m]
    modes = ["raw", "edgekit"] if args.mode == "both" else [args.mode]
    formats = [f for f in args.formats.split(",") if f]
    unknown = set(models) - set(corpus())
    if unknown:
        ap.error(f"unknown models: {', '.join(sorted(unknown))}; known: {', '.join(corpus())}")
    json_path = Path(args.json or "conversion_matrix.json")
    cells = []
    with tempfile.TemporaryDirectory(prefix="edgekit-matrix-") as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        for name in models:
            for fmt in formats:
                for mode in modes:
                    c = run_cell(name, fmt, cache, Path(tmp) / "out", mode, args.keep_workdir)
                    cells.append(c)
                    cos = f"{c['worst_cosine']:.6f}" if c.get("worst_cosine") is not None else "-"
                    print(f"{name:22s} {fmt:9s} {mode:8s} {c['status']:10s} cos {cos:9s} {c['seconds']:6.1f}s "
                          f"{c['conversions']} conv {c['recipe'] or '-'} {','.join(c['passes']) or '-'}"
                          + (f"\n    {c['error']}" if c.get("error") else ""), flush=True)
    if args.update and json_path.is_file():
        fresh = {(c["model"], c["format"], c["mode"]) for c in cells}
        old_cells = json.loads(json_path.read_text())["cells"]
        cells = [c for c in old_cells if (c["model"], c["format"], c.get("mode")) not in fresh] + cells
        order = {m: i for i, m in enumerate(corpus())}
        cells.sort(key=lambda c: (order.get(c["model"], 99), FORMATS.index(c["format"])
                                  if c["format"] in FORMATS else 99))
    print()
    print(table(cells))
    import edgekit
    from edgekit import backends

    info = {"edgekit": edgekit.__version__, "modes": modes, "python": sys.version.split()[0],
            "machine": platform.machine(), "tools": {f: backends.get(f).versions() for f in formats},
            "cells": cells}
    json_path.write_text(json.dumps(info, indent=2) + "\n")
    print(f"\nwrote {json_path}")
    return 0 if all(c["status"] == "ok" for c in cells if c["mode"] == "edgekit") else 1


if __name__ == "__main__":
    sys.exit(main())
