"""A fleet file and one job on every device of it, in parallel, merged into one table (device x artifact/format).

devices.toml:
    [[device]]
    name = "pi5-kitchen"
    address = "ssh://pi@10.0.0.7"
    profile = "raspberry-pi-5"          # optional: the targets/ profile the device is
    edgekit = "/home/pi/venv/bin/edgekit"  # optional: where the device's edgekit is (default: on PATH)
    identity = "~/.ssh/id_ed25519"      # optional: a key file (the agent and ~/.ssh are tried anyway)
    known_hosts = "~/.ssh/known_hosts_lab"  # optional: checked before ~/.ssh/known_hosts
    workdir = ".cache/edgekit/remote"   # optional: where copies and jobs live there (relative: to the home)
No passwords: there is no field for one."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomllib

from ..errors import EdgekitError
from .address import parse
from .job import Device, JobResult, run_job

FIELDS = {"name", "address", "profile", "edgekit", "identity", "known_hosts", "workdir"}


def load(path: str | Path) -> list[Device]:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"fleet file {path}: no such file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"fleet file {path}: not TOML ({e})") from None
    entries = data.get("device")
    if not isinstance(entries, list) or not entries:
        raise EdgekitError(f"fleet file {path}: no [[device]] tables (each with name and address)")
    devices, seen = [], set()
    for n, e in enumerate(entries, 1):
        where = f"fleet file {path}, device {n}"
        if not isinstance(e, dict):
            raise EdgekitError(f"{where}: not a table")
        unknown = set(e) - FIELDS
        if unknown:
            extra = " (passwords are never read from a file: use keys)" if any("pass" in k for k in unknown) else ""
            raise EdgekitError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}{extra}; "
                               f"the fields are {', '.join(sorted(FIELDS))}")
        for key in ("name", "address"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise EdgekitError(f"{where}: '{key}' is missing")
        if e["name"] in seen:
            raise EdgekitError(f"{where}: the name '{e['name']}' is used twice")
        seen.add(e["name"])
        try:
            address = parse(e["address"])
        except EdgekitError as err:
            raise EdgekitError(f"{where}: {err}") from None
        base = path.parent
        files = {k: str((base / Path(e[k]).expanduser())) for k in ("identity", "known_hosts") if e.get(k)}
        devices.append(Device(name=e["name"], address=address, profile=e.get("profile"),
                              edgekit=e.get("edgekit", "edgekit"), **files,
                              **({"workdir": e["workdir"]} if e.get("workdir") else {})))
    return devices


def run_fleet(devices: list[Device], argv: list[str], workers: int | None = None,
              timeout: float | None = None) -> list[JobResult]:
    """The job on every device at once; a device's fault is its own result, the others finish."""
    with ThreadPoolExecutor(max_workers=workers or len(devices)) as pool:
        futures = [pool.submit(run_job, d, argv, None, timeout) for d in devices]
        return [f.result() for f in futures]


def _num(v):
    return v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def rows(results: list[JobResult]) -> list[dict]:
    """One row per device and artifact/format: status, cosine vs host, median/p90 ms, FPS, peak memory.
    Reads `verify` JSON (per-artifact device figures) and `bench` JSON (per-result statistics)."""
    out = []
    for r in results:
        base = {"device": r.device.name, "profile": r.device.profile or "-"}
        if r.error:
            out.append({**base, "artifact": "-", "format": "-", "status": "ERROR", "note": r.error})
            continue
        rep = r.report or {}
        items = _items(rep)
        if not items:
            out.append({**base, "artifact": "-", "format": "-", "status": "ok" if r.exit_code == 0 else
                        f"exit {r.exit_code}", "note": _last_line(r.output)})
            continue
        for it in items:
            out.append({**base, **it})
    return out


def _items(rep: dict) -> list[dict]:
    items = []
    for res in rep.get("results") or []:  # bench
        if not isinstance(res, dict) or res.get("status") == "reference" and res.get("format") == "onnx-ref":
            continue
        stats = res.get("stats") or {}
        median = _num(stats.get("median"))
        items.append({"artifact": res.get("artifact") or res.get("label"), "format": res.get("format"),
                      "threads": res.get("threads"), "status": res.get("status"),
                      "cosine": _num(res.get("worst_cosine")), "median_ms": median,
                      "p90_ms": _num(stats.get("p90")), "fps": round(1000.0 / median, 2) if median else None,
                      "peak_mb": _num(res.get("process_peak_rss_mb")) or _num(res.get("peak_rss_added_mb")),
                      "note": res.get("error") or ""})
    for art in rep.get("artifacts") or []:  # verify
        if not isinstance(art, dict):
            continue
        dev = art.get("device") if isinstance(art.get("device"), dict) else {}
        cos = _num(dev.get("cosine")) if dev else _num(art.get("device_cosine", art.get("cosine")))
        items.append({"artifact": art.get("artifact") or art.get("name"), "format": art.get("format"),
                      "precision": art.get("precision"), "status": art.get("status"), "cosine": cos,
                      "host_cosine": _num((art.get("host") or {}).get("cosine")) if isinstance(art.get("host"), dict)
                      else _num(art.get("host_cosine")),
                      "note": art.get("error") or art.get("install") or art.get("note") or ""})
    return items


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
