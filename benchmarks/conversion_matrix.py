"""The conversion matrix: every fixture model x every edge format through `edgekit.export`, each artifact
checked against ONNX Runtime fp32 on realistic inputs (rendered text for the PP-OCR models, scikit-image's
astronaut photo, whole or cropped to the face / an eye, for the MediaPipe models).

    python benchmarks/conversion_matrix.py                      # edgekit (its passes), writes matrix.json
    python benchmarks/conversion_matrix.py --raw --json raw.json  # the raw converters (no passes)
    python benchmarks/conversion_matrix.py --models ppocr-det --formats ncnn

Per cell: status (ok / inaccurate / failed), worst cosine over outputs and samples, max abs error, export
seconds (conversion + loading + verification) and the passes applied. The MediaPipe .tflite files are brought to
ONNX with `edgekit import` first (verified against LiteRT)."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ["ncnn", "mnn", "tflite", "openvino"]


def corpus():
    from edgekit import fixtures

    return {**fixtures.OCR_MODELS, **fixtures.MEDIAPIPE_MODELS}


def model_file(name: str, cache: Path) -> Path:
    from edgekit import fixtures

    if name in fixtures.MEDIAPIPE_MODELS:
        return fixtures.mediapipe_onnx(name, cache)
    return fixtures.OCR_MODELS[name].path


def run_cell(name: str, fmt: str, cache: Path, out: Path, raw: bool, keep_workdir: bool) -> dict:
    from edgekit import export, fixtures

    fx = corpus()[name]
    images = fixtures.write_images(cache / f"{name}-data", fx.kind, 2)
    start = time.perf_counter()
    try:
        (r,) = export(model_file(name, cache), target=fmt, out=out, input_shapes=[fx.input_shape],
                              data=images, preprocessing=fx.preprocessing, force=True, keep_workdir=keep_workdir,
                              passes=[] if raw else None)
    except Exception as e:  # bad input for this model: a cell, not a crash of the whole matrix
        return {"model": name, "format": fmt, "status": "error", "error": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - start, 2), "passes": []}
    v = r.manifest.verification if r.manifest else None
    return {"model": name, "format": fmt, "status": r.status,
            "worst_cosine": min(o.cosine for o in v.outputs) if v else None,
            "max_abs": max(o.max_abs for o in v.outputs) if v else None,
            "seconds": round(r.seconds, 2), "passes": r.manifest.passes if r.manifest else [],
            "error": r.error, "workdir": str(r.workdir) if r.workdir else None}


def table(cells: list[dict], title: str) -> str:
    """A Markdown table: one row per model, one column per format, `ok 0.999998` / `FAIL` per cell."""
    models = list(dict.fromkeys(c["model"] for c in cells))
    formats = list(dict.fromkeys(c["format"] for c in cells))
    by = {(c["model"], c["format"]): c for c in cells}
    lines = [f"**{title}**", "", "| model | " + " | ".join(formats) + " |",
             "|---|" + "---|" * len(formats)]
    for m in models:
        row = []
        for f in formats:
            c = by.get((m, f))
            if c is None:
                row.append("-")
            elif c["status"] == "ok":
                row.append(f"ok {c['worst_cosine']:.6f}")
            elif c["status"] == "inaccurate":
                row.append(f"WRONG cos {c['worst_cosine']:.4f}")
            else:
                row.append("FAIL")
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    ok = sum(c["status"] == "ok" for c in cells)
    lines += ["", f"{ok}/{len(cells)} correct (cosine >= 0.999 on every output, fp32)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(corpus()), help="comma list (default: all 7)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma list (default: all 4)")
    ap.add_argument("--raw", action="store_true", help="no normalisation passes: the raw converters")
    ap.add_argument("--json", default=None, help="write the cells here (default: conversion_matrix[_raw].json)")
    ap.add_argument("--cache", default=None, help="folder for imported models and images (default: a temp dir)")
    ap.add_argument("--keep-workdir", action="store_true", help="keep each converter's scratch folder")
    ap.add_argument("--update", action="store_true",
                    help="re-run only the given cells and merge them into the existing JSON (table of all)")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    formats = [f for f in args.formats.split(",") if f]
    unknown = set(models) - set(corpus())
    if unknown:
        ap.error(f"unknown models: {', '.join(sorted(unknown))}; known: {', '.join(corpus())}")
    json_path = Path(args.json or f"conversion_matrix{'_raw' if args.raw else ''}.json")
    cells = []
    with tempfile.TemporaryDirectory(prefix="edgekit-matrix-") as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        for name in models:
            for fmt in formats:
                c = run_cell(name, fmt, cache, Path(tmp) / "out", args.raw, args.keep_workdir)
                cells.append(c)
                cos = f"{c['worst_cosine']:.6f}" if c.get("worst_cosine") is not None else "-"
                print(f"{name:16s} {fmt:9s} {c['status']:10s} cos {cos:9s} {c['seconds']:6.1f}s "
                      f"{','.join(c['passes']) or '-'}" + (f"\n    {c['error']}" if c.get("error") else ""),
                      flush=True)
    if args.update and json_path.is_file():
        fresh = {(c["model"], c["format"]) for c in cells}
        old_cells = json.loads(json_path.read_text())["cells"]
        cells = [c for c in old_cells if (c["model"], c["format"]) not in fresh] + cells
        order = {m: i for i, m in enumerate(corpus())}
        cells.sort(key=lambda c: (order.get(c["model"], 99), FORMATS.index(c["format"])
                                  if c["format"] in FORMATS else 99))
    title = "raw converters (no passes)" if args.raw else "edgekit"
    print()
    print(table(cells, title))
    import edgekit
    from edgekit import backends

    info = {"edgekit": edgekit.__version__, "mode": "raw" if args.raw else "edgekit", "python": sys.version.split()[0],
            "machine": platform.machine(), "tools": {f: backends.get(f).versions() for f in formats},
            "cells": cells}
    json_path.write_text(json.dumps(info, indent=2) + "\n")
    print(f"\nwrote {json_path}")
    return 0 if all(c["status"] == "ok" for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
