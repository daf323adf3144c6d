"""`edgekit verify BUNDLE`: check a bundle's files, rerun its artifacts here against the host's reference."""
from __future__ import annotations

from .common import console, fmt_float, print_table, status


def register(sub) -> None:
    p = sub.add_parser(
        "verify", help="on the device: check a bundle's hashes, rerun its artifacts, host vs device table",
        description="Check every file of a bundle (folder or .tar.gz made by `edgekit bundle`) against the sha256 "
        "in bundle.json, then run each artifact on this machine's runtimes on the stored samples and compare with "
        "the host's stored ONNX Runtime fp32 outputs (no ONNX model or converter needed). Exit 0 when every "
        "artifact passes, 1 when one fails or its runtime is missing (the row says what to install), 2 for a "
        "bundle whose files do not match bundle.json.")
    p.add_argument("bundle", help="the bundle folder or .tar.gz")
    p.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: the profile's)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=main)


def main(args) -> int:
    import json

    from rich.markup import escape

    from ..bundle import verify_bundle
    from ..fsutil import atomic_write_text, check_output_files

    check_output_files(args, ("json",))
    with status("verifying") as update:
        report = verify_bundle(args.bundle, threads=args.threads,
                               progress=(lambda msg: None) if args.quiet else update)
    con = console()
    dev = report.device
    header = ["artifact", "format", "precision", "host cosine", "host max-abs", "device cosine", "device max-abs",
              "status"]
    colors = {"ok": "green", "failed": "yellow"}
    rows = []
    for a in report.artifacts:
        st = a.status if not a.install else f"{a.status}: pip install {a.install}"
        rows.append([escape(a.artifact), a.format, a.precision, fmt_float(a.host.get("cosine")),
                     fmt_float(a.host.get("max_abs")), fmt_float(a.device.get("cosine")),
                     fmt_float(a.device.get("max_abs")), f"[{colors.get(a.status, 'red')}]{escape(st)}[/]"])
    print_table(con, header, rows, left=("format", "precision", "status"),
                title=f"{report.bundle} ({report.target}) on {dev['node']}: {dev['machine']}, {dev['cpus']} CPUs, "
                      f"Python {dev['python']}")
    for a in report.artifacts:
        if a.error:
            con.print(f"[red]{escape(a.artifact)}: {escape(a.error)}[/]")
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
        con.print(f"wrote {args.json}")
    return 0 if report.passed else 1
