"""`edgekit targets`: the formats (installed or not, with versions) and the device profiles."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("targets", help="list formats (installed?, versions) and device profiles",
                       description="The formats (installed here or not, versions) and the device profiles: arch, "
                       "Python, threads, preferred formats, the pinned runtime packages a bundle installs, and "
                       "whether the package registry has wheels for them (as last checked).")
    p.add_argument("--check-registry", action="store_true",
                   help="ask the package registry now (pip download --no-deps for each profile's platform and "
                        "Python into a temporary folder: touches the network, downloads the wheels once; the "
                        "answers are cached for a week)")
    p.add_argument("--profile", action="append", default=None, metavar="NAME", help="only these profiles")
    p.set_defaults(func=main)


def main(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from .. import backends
    from ..errors import EdgekitError
    from ..targets import cached_registry, check_registry, profile_dir, profiles
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
    profs = profiles()
    unknown = [n for n in args.profile or [] if n not in profs]
    if unknown:
        raise EdgekitError(f"unknown profile '{unknown[0]}'; profiles: {', '.join(profs)}")
    chosen = {n: p for n, p in profs.items() if not args.profile or n in args.profile}
    t = Table(title=f"device profiles ({profile_dir()})", title_justify="left")
    for col in ("profile", "arch", "python", "cores", "threads", "formats (preferred first)", "precision",
                "qemu cpu", "runtimes (pinned)", "wheels on the registry"):
        t.add_column(col)
    for name, p in chosen.items():
        if args.check_registry:
            con.print(f"[dim]asking the registry for {name}'s wheels ({p.arch}, cp{p.python.replace('.', '')})[/]")
        answers = check_registry(p) if args.check_registry else cached_registry(p)
        t.add_row(name, p.arch, p.python, str(p.cores), str(p.threads or "auto"), ", ".join(p.formats),
                  p.precision, p.qemu_cpu or "-", escape(", ".join(p.runtimes.values())), registry_cell(p, answers))
    con.print(t)
    for name, p in chosen.items():
        if p.gpu:
            con.print(f"{name} GPU: {escape(p.gpu)}")
    con.print("use a profile with: edgekit export MODEL.onnx --target <profile>; "
              "edgekit bundle ARTIFACT... --target <profile> -o DIR")
    return 0


def registry_cell(profile, answers: dict) -> str:
    """'all 13 found', 'no wheel: a, b', or 'not checked' (then `--check-registry` asks)."""
    from rich.markup import escape

    if not answers:
        return "[dim]not checked (--check-registry)[/]"
    missing = [pkg for pkg, a in answers.items() if not a.get("ok")]
    unknown = [pkg for pkg in profile.requirements if pkg not in answers]
    text = "[red]no wheel: " + escape(", ".join(missing)) + "[/]" if missing else \
        f"[green]all {len(answers)} found[/]"
    return text + (f" ({len(unknown)} not checked)" if unknown else "")
