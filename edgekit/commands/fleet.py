"""`--on ssh://user@host[:port]` and `--fleet devices.toml` for run, check, bench and verify: the same command on
the user's own devices over SSH. `--device` keeps meaning the compute device (cpu/vulkan); where a job runs is
`--on` (one device, its own table relayed, the device named) or `--fleet` (every device in parallel, one merged
table: device x artifact/format)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import console, fmt_float, print_table

REMOTE_COMMANDS = ("run", "check", "bench", "verify")


def add_remote_args(p) -> None:
    g = p.add_argument_group("remote devices (SSH; host keys checked, keys from the agent or ~/.ssh)")
    g.add_argument("--on", default=None, metavar="ssh://USER@HOST[:PORT]|NAME",
                   help="run this command on that device with its own edgekit (or on the device NAME of --fleet); "
                        "local paths given are copied there (unchanged files are not sent again), reports come back")
    g.add_argument("--fleet", default=None, metavar="DEVICES.toml",
                   help="run it on every device of the fleet file in parallel and merge one table")


def strip_remote_args(argv: list[str]) -> list[str]:
    """The command line to give the device's edgekit: without --on/--fleet (and their value) and global flags."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in ("--on", "--fleet"):
            skip = True
            continue
        if item.startswith(("--on=", "--fleet=")) or item in ("--verbose", "-v"):
            continue
        out.append(item)
    return out


def strip_option(argv: list[str], option: str) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


def main(args, argv: list[str]) -> int:
    from ..errors import EdgekitError
    from ..fsutil import atomic_write_text, check_output_files
    from ..remote import fleet as fleet_mod
    from ..remote.job import Device, run_job
    from ..remote.ssh import DeviceError

    check_output_files(args, tuple(f for f in ("json", "markdown", "html") if hasattr(args, f)))
    job_argv = strip_remote_args(argv)
    if not job_argv or job_argv[0] != args.command:
        raise EdgekitError(f"--on/--fleet: put them after the command (edgekit {args.command} ... --on ...)")
    con = console()
    if args.on:
        if args.fleet:
            devices = {d.name: d for d in fleet_mod.load(args.fleet)}
            if args.on not in devices:
                raise EdgekitError(f"--on {args.on}: no device of that name in {args.fleet} "
                                   f"(it has {', '.join(devices)})")
            device = devices[args.on]
        else:
            device = Device.from_address(args.on)
        con.print(f"[bold]device {device.name}[/bold] ({device.address})")
        result = run_job(device, job_argv, on_output=lambda text: (sys.stdout.write(text), sys.stdout.flush()))
        if result.error:
            raise DeviceError(result.error)
        return result.exit_code
    devices = fleet_mod.load(args.fleet)
    # --json is the merged document here; each device's own comes back inside it
    results = fleet_mod.run_fleet(devices, strip_option(job_argv, "--json"))
    merged = fleet_mod.rows(results)
    print_fleet(merged, con)
    if getattr(args, "json", None):
        doc = {"schema": 1, "command": job_argv, "devices": [r.to_dict() for r in results], "rows": merged}
        atomic_write_text(Path(args.json), json.dumps(doc, indent=2, default=str) + "\n")
    return max((1 if r.error else (r.exit_code if r.exit_code in (0, 1, 2) else 1)) for r in results)


def print_fleet(merged: list[dict], con=None) -> None:
    con = con or console()
    header = ["device", "profile", "artifact", "format", "status", "cosine vs host", "median ms", "p90 ms", "FPS",
              "peak MB", "note"]
    table = []
    for r in merged:
        status = r.get("status") or "-"
        colour = "green" if status in ("ok", "PASS", "pass") else "red"
        table.append([r["device"], r.get("profile") or "-", str(r.get("artifact") or "-"), str(r.get("format") or "-"),
                      f"[{colour}]{status}[/{colour}]", _f(r.get("cosine"), 6), _f(r.get("median_ms"), 2),
                      _f(r.get("p90_ms"), 2), _f(r.get("fps"), 1), _f(r.get("peak_mb"), 0),
                      _escape(str(r.get("note") or ""))])
    print_table(con, header, table, keys=(0, 2, 3), left=(0, 1, 2, 3, 4, 10), title="fleet")


def _f(v, digits: int) -> str:
    return "-" if v is None else (fmt_float(v, digits) if digits else f"{v:.0f}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
