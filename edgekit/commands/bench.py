"""`edgekit bench ARTIFACT [ARTIFACT ...]` and the one-shot `edgekit bench MODEL.onnx --target all`."""
from __future__ import annotations

from .common import add_preprocessing_args, call_with, console, preprocessing_from_args, print_table, status


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="latency of artifacts on every backend, measured the same way (tables, JSON, HTML)",
        description="Measure load time, first inference and steady-state latency of each artifact (folders made "
        "by `export`, or .onnx files run by ONNX Runtime), interleaved so machine noise hits all alike. With "
        "--target, export MODEL.onnx to every format of the target, check each against ONNX Runtime, and "
        "benchmark them all in one table. Methodology: docs/bench.md. Exit 0 on success, 1 when an artifact "
        "failed to convert/verify/run, 2 for bad input.")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help="artifact folders, bundles or .onnx files "
                   "(with --target: one MODEL.onnx)")
    p.add_argument("--target", "-t", default=None, help="one-shot: export to this target first (a format, a comma "
                   "list, 'all', or a device profile)")
    p.add_argument("--threads", default=None, metavar="N[,N...]",
                   help="thread counts to sweep, e.g. 1,2,4 (default: the profile's, else the CPUs this process "
                        "may use)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per artifact first (default 10)")
    p.add_argument("--iterations", type=int, default=50, help="at least this many timed calls (default 50)")
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="and at least this many seconds of timed calls per artifact (default 2)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop an artifact after this much timed time")
    p.add_argument("--data", "--input", action="append", default=None, metavar="PATH", dest="data",
                   help="inputs as in `check` and `export`: images (through the preprocessing) or .npy/.npz; "
                        "default generated (--input is the older spelling)")
    p.add_argument("--input-shape", action="append", default=None, metavar="NAME:1x3x48x192", dest="input_shapes",
                   help="static shape for a dynamic input (export and .onnx runs)")
    p.add_argument("--settle-ms", type=float, default=50.0,
                   help="idle pause before each block so spinning worker threads of the previous backend go "
                        "to sleep (default 50)")
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="idle time between timed calls: 0 = back-to-back (default); e.g. 33 for a 30 fps camera")
    p.add_argument("--memory", choices=["subprocess", "inprocess"], default="subprocess",
                   help="measure each artifact's peak memory in a fresh child process (default) or in this one")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled interleaving order")
    p.add_argument("--out", "-o", default=None, help="with --target: keep the artifacts in this folder "
                   "(default: a temporary folder)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default=None, help="with --target: export precision")
    p.add_argument("--force", action="store_true", help="with --target: overwrite existing artifacts")
    p.add_argument("--json", default=None, metavar="FILE", help="write everything (every sample) as JSON")
    p.add_argument("--markdown", "--md", default=None, metavar="FILE", help="write the tables as Markdown")
    p.add_argument("--html", default=None, metavar="FILE", help="write a self-contained HTML report with plots")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_preprocessing_args(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from ..fsutil import check_output_files
    from ..workflows import bench

    check_output_files(args, ("json", "markdown", "html"))
    if not args.target:  # a bundle (edgekit bundle) stands for its artifacts, checked against its hashes first
        from ..bundle import expand_bundles

        args.artifacts = expand_bundles(args.artifacts)
    with status("preparing") as update:
        report = call_with(bench, args, preprocessing=preprocessing_from_args(args),
                           progress=(lambda msg: None) if args.quiet else update)
    print_report(report)
    con = console()
    for flag, writer in (("json", report.write_json), ("markdown", report.write_markdown),
                         ("html", report.write_html)):
        path = getattr(args, flag)
        if path:
            writer(path)
            con.print(f"wrote {path}")
    bad = [r for r in report.results if r.status in ("failed", "inaccurate", "error")]
    return 1 if bad else 0


def _wide_console():
    import sys

    from rich.console import Console

    return console() if sys.stdout.isatty() else Console(highlight=False, width=200)


def print_report(report, con=None) -> None:
    from rich.markup import escape

    from ..harness import report as rep

    con = con or _wide_console()
    if report.one_shot:
        h, rows, statuses = rep.summary_table(report)
        cells = []
        for row, st in zip(rows, statuses):
            color = {"ok": "green", "reference": "blue", "inaccurate": "yellow"}.get(st, "red")
            row = [escape(c) for c in row]
            row[h.index("status")] = f"[{color}]{row[h.index('status')]}[/]"
            cells.append(row)
        print_table(con, h, cells, left=("format", "status", "threads"), title=report.title)
    h, rows = rep.detail_table(report)
    if rows:
        print_table(con, h, [[escape(c) for c in row] for row in rows], left=("artifact", "precision"),
                    title="latency, ms" if report.one_shot else f"{report.title} (latency, ms)")
    for warning in rep.unstable_warnings(report):
        con.print(f"[yellow]{escape(warning)}[/]")
    if report.recommendation:
        con.print(f"[bold]recommendation:[/] {escape(report.recommendation['text'])}")
    for r in report.results:
        if r.error:
            msg = r.error if r.error.startswith(f"{r.format}:") else f"{r.label}: {r.error}"
            con.print(f"[red]{escape(msg)}[/]")
    env = report.environment
    con.print(f"[dim]{env.get('cpu')}, {env.get('logical_cpus')} logical CPUs; inputs: {report.inputs or '-'}; "
              f"methodology: docs/bench.md[/]")
