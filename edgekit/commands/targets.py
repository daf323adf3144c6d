"""`edgekit targets`: the formats (installed or not, with versions) and the device profiles."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("targets", help="list formats (installed?, versions) and device profiles")
    p.set_defaults(func=main)


def main(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from .. import backends
    from ..targets import profile_dir, profiles
    from .common import console

    con = console()
    t = Table(title="formats", title_justify="left")
    for col in ("format", "runtime", "can run", "can export", "versions", "install with"):
        t.add_column(col)
    yes_no = {True: "[green]yes[/]", False: "[red]no[/]"}
    for fmt in backends.formats():
        b = backends.get(fmt)
        run, export = b.available(), b.available(convert=True)
        versions = ", ".join(f"{k} {v}" for k, v in b.versions().items() if v) if run else "-"
        t.add_row(fmt, b.runtime, yes_no[run], yes_no[export], versions,
                  "" if export else escape(b.install_hint()))
    con.print(t)
    t = Table(title=f"device profiles ({profile_dir()})", title_justify="left")
    for col in ("profile", "arch", "cores", "formats (preferred first)", "precision", "threads", "device needs"):
        t.add_column(col)
    for name, p in profiles().items():
        t.add_row(name, p.arch, str(p.cores), ", ".join(p.formats), p.precision, str(p.threads or "auto"),
                  escape(" ".join(p.requirements)))
    con.print(t)
    con.print("use a profile with: edgekit export MODEL.onnx --target <profile>")
    return 0
