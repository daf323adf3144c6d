"""`edgekit check ARTIFACT [ARTIFACT ...]`: accuracy against ONNX Runtime (or saved goldens), with --bisect."""
from __future__ import annotations

import json
import math
from pathlib import Path

from .common import add_preprocessing_args, console, fmt_float, preprocessing_from_args, print_table, status


def register(sub) -> None:
    p = sub.add_parser("check", help="compare artifacts with ONNX Runtime fp32; --bisect finds the diverging node",
                       description="Run the reference (ONNX Runtime fp32 on the original model, found through "
                       "the manifest or given with --model) and each artifact on the same inputs; report per "
                       "output max abs/rel error, mean abs error, cosine, SNR/PSNR, top-1/top-5 agreement for "
                       "class scores, PASS/FAIL and the smallest tolerance that would pass. Exit 0 only when "
                       "every output of every artifact passes.")
    p.add_argument("artifacts", nargs="+", help="artifact folders (or .onnx files)")
    p.add_argument("--model", default=None, help="the original ONNX model (default: from the manifest)")
    p.add_argument("--data", action="append", default=None, metavar="PATH",
                   help="images/folders (preprocessed as the manifest says, or by --mean/--std/...) or .npy/.npz")
    p.add_argument("--samples", type=int, default=2, help="inputs to compare on (worst and mean reported)")
    p.add_argument("--atol", action="append", metavar="[NAME:]VALUE",
                   help="absolute tolerance (per output); given alone it is the whole bound (rtol 0 for those outputs)")
    p.add_argument("--rtol", action="append", metavar="[NAME:]VALUE",
                   help="tolerance relative to max|reference|; an element passes within atol + rtol x max|ref|, an "
                        "output when 99.9%% of its elements do and its cosine reaches --cos")
    p.add_argument("--cos", action="append", metavar="[NAME:]VALUE", help="minimum cosine similarity")
    p.add_argument("--golden", default=None, metavar="DIR",
                   help="use the reference saved in DIR; if DIR has none, compute it and save it there")
    p.add_argument("--bisect", action="store_true", help="on a failing artifact, find the first diverging node")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("--markdown", default=None, metavar="FILE")
    add_preprocessing_args(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from ..fsutil import atomic_write_text, check_output_files
    from ..harness.check import check, parse_tolerance

    check_output_files(args, ("json", "markdown"))
    with status("checking") as update:
        report = check(args.artifacts, model=args.model, data=args.data, samples=args.samples,
                       preprocessing=preprocessing_from_args(args), atol=parse_tolerance(args.atol, "atol"),
                       rtol=parse_tolerance(args.rtol, "rtol"), cos=parse_tolerance(args.cos, "cos"),
                       golden=args.golden, threads=args.threads, bisect=args.bisect, progress=update)
    print_report(report)
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(report.to_dict(), indent=2, default=_json_default) + "\n")
    if args.markdown:
        atomic_write_text(Path(args.markdown), markdown(report))
    return 0 if report.passed else 1


def _json_default(v):
    return None if isinstance(v, float) and math.isinf(v) else str(v)


def _db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.1f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


COLUMNS = ("artifact", "format", "precision (real)", "output", "max abs", "max rel", "mean abs", "cosine worst / mean",
           "SNR dB",
           "PSNR dB", "top-1", "top-5", "verdict", "would pass with")


def rows(report):
    for a in report.artifacts:
        prec = f"{a.precision['requested']} ({a.precision['compute']})"
        for o in a.outputs:
            t = o.tolerance
            verdict = "PASS" if o.passed else "FAIL"
            need = f"atol {o.needs_atol:.2g}, rtol {o.needs_rtol:.2g}"
            yield (Path(a.artifact).name, a.format, prec, o.name, fmt_float(o.max_abs), fmt_float(o.max_rel),
                   fmt_float(o.mean_abs), f"{fmt_float(o.cosine)} / {fmt_float(o.mean_cosine)}", _db(o.snr_db),
                   _db(o.psnr_db), _pct(o.top1), _pct(o.top5), verdict, need), t


def print_report(report, con=None) -> None:
    from rich.markup import escape

    con = con or console(width=220)
    con.print(f"reference: {report.reference}", markup=False)
    con.print(f"inputs: {report.inputs}", markup=False)
    tols, cells = set(), []
    for row, t in rows(report):
        style = "green" if row[12] == "PASS" else "red"
        cells.append([escape(x) for x in row[:12]] + [f"[{style}]{row[12]}[/]", escape(row[13])])
        tols.add(f"cos >= {t['cos']}, max abs <= {t['atol']} + {t['rtol']} x max|ref|")
    print_table(con, COLUMNS, cells, keys=(0, 3), left=("format", "precision (real)", "verdict", "would pass with"))
    con.print("tolerances: " + "; ".join(sorted(tols)), markup=False)
    for a in report.artifacts:
        if a.bisect:
            print_bisect(con, a)
    con.print(f"versions: edgekit {report.edgekit}; " + "; ".join(
        f"{a.format}: " + ", ".join(f"{k} {v}" for k, v in a.versions.items() if k != "edgekit")
        for a in report.artifacts), markup=False)


def print_bisect(con, a) -> None:
    b = a.bisect
    con.print(f"\n[bold]bisect[/] {escape_text(a.artifact)} (output {escape_text(b['output'])}): "
              f"{b['conversions']} conversions over {b['candidates']} candidate nodes")
    for s in b["steps"]:
        state = "diverged" if s["diverged"] else "ok"
        detail = s["error"] or f"cosine {fmt_float(s['cosine'])}  max abs {fmt_float(s['max_abs'])}"
        con.print(f"  #{s['index']:<4} {s['op']:<14} {s['node']:<40} {state:<9} {detail}", markup=False)
    n = b["node"]
    if n is None:
        con.print("  the prefix up to the failing output reproduces ONNX Runtime: no single node to blame "
                  "(the difference comes from how the whole graph is compiled)")
        return
    con.print(f"  first diverging node: {n['name']} ({n['op']}), inputs {n['inputs']}, outputs {n['outputs']}, "
              f"attributes {n['attributes']}; last good: {b['last_good']}", markup=False)


def escape_text(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def markdown(report) -> str:
    lines = ["# edgekit check", "", f"- reference: {report.reference}", f"- inputs: {report.inputs}",
             f"- verdict: {'PASS' if report.passed else 'FAIL'}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row, _ in rows(report):
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    for a in report.artifacts:
        if a.bisect:
            b = a.bisect
            lines += ["", f"## bisect: {a.artifact}", "",
                      f"{b['conversions']} conversions over {b['candidates']} candidate nodes.", "",
                      "| # | op | node | cosine | max abs | state |", "|---|---|---|---|---|---|"]
            for s in b["steps"]:
                lines.append(f"| {s['index']} | {s['op']} | {s['node']} | {fmt_float(s['cosine'])} | "
                             f"{fmt_float(s['max_abs'])} | {'diverged' if s['diverged'] else 'ok'} |")
            if b["node"]:
                lines += ["", f"First diverging node: `{b['node']['name']}` ({b['node']['op']})"]
    return "\n".join(lines) + "\n"
