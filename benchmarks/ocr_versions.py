#!/usr/bin/env python
"""PP-OCRv4 vs PP-OCRv6 through `edgekit.apps.TextReader` on every backend: character accuracy on text pages
rendered by `edgekit.fixtures.render_text_page` (lines and sizes the app's sample video does not use) and the
time per page, side by side in one run. Whitespace is not scored (PP-OCRv4 mostly drops spaces between Latin
words). A backend whose export refuses a model (the export's verification gate) is reported, not skipped.

    python benchmarks/ocr_versions.py --pages 4 --json benchmarks/results/ocr_versions.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

BACKENDS = ["onnx", "ncnn", "mnn", "openvino", "tflite"]


def pages(count: int):
    """(BGR page, its lines): 5 lines a page, which always fit (render_text_page stops at the bottom edge)."""
    import cv2

    from edgekit.fixtures import LINES, render_text_page

    out = []
    for i in range(count):
        lines = (LINES[i % len(LINES):] + LINES[:i % len(LINES)])[:5]
        out.append((cv2.cvtColor(render_text_page(lines, seed=100 + i), cv2.COLOR_RGB2BGR), lines))
    return out


def measure(backend: str, version: str, data, cache: Path | None, threads: int | None) -> dict:
    from edgekit.apps import TextReader
    from edgekit.errors import EdgekitError
    from edgekit.harness.task_metrics import char_errors

    try:
        reader = TextReader(backend=backend, version=version, threads=threads, cache=cache)
    except EdgekitError as e:
        return {"backend": backend, "version": version, "error": str(e)}
    errors = chars = 0
    times = []

    with reader:
        reader.process(data[0][0])  # warm-up
        for page, lines in data:
            t = time.perf_counter()
            got = reader.process(page)
            times.append(time.perf_counter() - t)
            e, n = char_errors("".join(ln.text for ln in got), "".join(lines))
            errors, chars = errors + e, chars + n
    times.sort()
    return {"backend": backend, "version": version, "char_accuracy": round(100 * (1 - errors / chars), 2),
            "chars": chars, "median_ms_per_page": round(1000 * times[len(times) // 2], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="export cache (default: the pipeline's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    data = pages(args.pages)
    rows = [measure(b, v, data, args.cache, args.threads) for b in args.backends.split(",") for v in ("v4", "v6")]
    print("| backend | PP-OCRv4 accuracy | PP-OCRv4 ms/page | PP-OCRv6 accuracy | PP-OCRv6 ms/page |")
    print("|---|---|---|---|---|")
    for b in args.backends.split(","):
        cells = []
        for r in (r for r in rows if r["backend"] == b):
            cells += ([f"{r['char_accuracy']:.2f}%", f"{r['median_ms_per_page']:.0f}"] if "error" not in r
                      else ["not exported", "-"])
        print(f"| {b} | " + " | ".join(cells) + " |")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']} {r['version']}: {r['error'][:300]}", file=sys.stderr)
    if args.json:
        from edgekit.fsutil import atomic_write_text

        env = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average": os.getloadavg()}
        atomic_write_text(args.json, json.dumps({**env, "pages": args.pages, "threads": args.threads,
                                                 "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
