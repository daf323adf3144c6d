"""One edgekit command on one device: copy the local paths it names (content-addressed), run it there with the
device's own `edgekit`, bring back its JSON (and the files it was asked to write), tidy the job's folder."""
from __future__ import annotations

import json
import posixpath
import shlex
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgekitError
from .address import Address, parse
from .ssh import Connection, DeviceError
from .sync import fetch_tree, makedirs, push

REMOTE_ROOT = ".cache/edgekit/remote"  # under the device user's home
# options whose value is a local input to copy (a path, or NAME=PATH)
INPUT_OPTIONS = {"--data", "--input", "-i", "--model", "--golden"}
# options whose value is a file or folder the job writes, brought back here
OUTPUT_OPTIONS = {"--json", "--markdown", "--md", "--html", "--save"}
# commands whose --json the fleet table merges (added when the user gave none)
JSON_COMMANDS = {"verify", "bench", "check"}
# exit status of a shell that cannot find the command
NOT_FOUND = 127


@dataclass
class Device:
    """A device of a fleet file, or the one named by --on."""

    name: str
    address: Address
    profile: str | None = None
    edgekit: str = "edgekit"  # the device's edgekit command (a venv's bin/edgekit where it is not on PATH)
    identity: str | None = None  # a private key file (the agent and ~/.ssh are tried too)
    known_hosts: str | None = None
    workdir: str = REMOTE_ROOT  # where copies and jobs live on the device (relative: to the user's home)

    @classmethod
    def from_address(cls, text: str) -> Device:
        a = parse(text)
        return cls(name=a.host if a.port == 22 else f"{a.host}:{a.port}", address=a)


@dataclass
class JobResult:
    device: Device
    exit_code: int
    output: str = ""
    report: dict | None = None  # the job's JSON
    error: str | None = None  # why the device could not run it (one line)
    seconds: float = 0.0
    sent: dict = field(default_factory=dict)  # files sent / kept per copied path

    def to_dict(self) -> dict:
        d = self.device
        return {"device": d.name, "address": str(d.address), "profile": d.profile, "exit_code": self.exit_code,
                "error": self.error, "seconds": round(self.seconds, 2), "sent": self.sent, "report": self.report}


def _option_value(argv: list[str], i: int) -> tuple[str, str | None, int]:
    """(option, value, items used) at argv[i]: `--opt value` or `--opt=value`."""
    opt, eq, val = argv[i].partition("=")
    if eq:
        return opt, val, 1
    return opt, (argv[i + 1] if i + 1 < len(argv) else None), 2


def plan(argv: list[str]) -> tuple[list[tuple[int, str, Path]], list[tuple[int, str, Path, str]]]:
    """Which argv items are local inputs to copy, (index, prefix, path), and which are outputs to bring back,
    (index, prefix, path, option)."""
    inputs, outputs = [], []
    i = 1  # argv[0] is the command
    while i < len(argv):
        item = argv[i]
        if item.startswith("-"):
            opt, val, used = _option_value(argv, i)
            vi = i if used == 1 else i + 1
            prefix = f"{opt}=" if used == 1 else ""
            if val is not None and opt in INPUT_OPTIONS:
                name, sep, file = val.partition("=")
                if sep and Path(file).exists():
                    inputs.append((vi, f"{prefix}{name}=", Path(file)))
                elif Path(val).exists():
                    inputs.append((vi, prefix, Path(val)))
                i += used
                continue
            if val is not None and opt in OUTPUT_OPTIONS:
                outputs.append((vi, prefix, Path(val), opt))
                i += used
                continue
            i += 1
            continue
        if Path(item).exists():
            inputs.append((i, "", Path(item)))
        i += 1
    return inputs, outputs


def run_job(device: Device, argv: list[str], on_output=None, timeout: float | None = None) -> JobResult:
    """Run `edgekit ARGV...` on `device`. Device faults come back as a JobResult with `error` set (exit 1), so a
    fleet's other devices go on; bad local input (a path that is not there) raises EdgekitError before any work."""
    start = time.monotonic()
    result = JobResult(device=device, exit_code=1)
    inputs, outputs = plan(argv)
    argv = list(argv)
    try:
        with Connection(device.address, identity=device.identity, known_hosts=device.known_hosts) as conn:
            root = posixpath.join(conn.home(), device.workdir)
            job = posixpath.join(root, "jobs", uuid.uuid4().hex[:12])
            makedirs(conn.sftp, job)
            for idx, prefix, path in inputs:
                pushed = push(conn.sftp, path, posixpath.join(root, "files"))
                result.sent[path.name] = {"sent": pushed.sent, "kept": pushed.kept, "bytes": pushed.bytes_sent}
                argv[idx] = prefix + pushed.remote
            fetch = []
            for n, (idx, prefix, path, opt) in enumerate(outputs):
                remote = posixpath.join(job, f"out{n}-{path.name}")
                argv[idx] = prefix + remote
                fetch.append((remote, path, opt))
            own_json = None
            if argv[0] in JSON_COMMANDS and not any(opt == "--json" for _, _, opt in fetch):
                own_json = posixpath.join(job, "result.json")
                argv += ["--json", own_json]
            try:
                command = (f"cd {shlex.quote(job)} && command -v {shlex.quote(device.edgekit)} >/dev/null 2>&1 "
                           f"|| exit {NOT_FOUND}; NO_COLOR=1 COLUMNS=160 exec {shlex.quote(device.edgekit)} "
                           + " ".join(shlex.quote(a) for a in argv))
                code, output = conn.run(command, on_output=on_output, timeout=timeout)
                result.exit_code, result.output = code, output
                if code == NOT_FOUND:
                    raise DeviceError(f"{device.address}: '{device.edgekit}' is not installed there (or not on the "
                                      "PATH of a non-interactive shell): pip install 'edgekit[runtime]' on the "
                                      "device, or name its full path with `edgekit = \"/path/venv/bin/edgekit\"` "
                                      "in the fleet file")
                json_remote = own_json or next((r for r, _, o in fetch if o == "--json"), None)
                if json_remote:
                    result.report = _read_json(conn, json_remote)
                for remote, local, opt in fetch:
                    _bring_back(conn, remote, local, opt)
            finally:
                try:
                    conn.run(f"rm -rf {shlex.quote(job)}", timeout=60)
                except DeviceError:
                    pass
    except DeviceError as e:
        result.exit_code, result.error = 1, str(e)
    result.seconds = time.monotonic() - start
    if result.error is None and result.exit_code not in (0, 1) and result.report is None:
        last = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        result.error = f"{device.address}: " + (last[-1] if last else f"exit status {result.exit_code}")
    return result


def _read_json(conn, remote: str) -> dict | None:
    try:
        with conn.sftp.open(remote, "r") as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError):
        return None


def _bring_back(conn, remote: str, local: Path, opt: str) -> None:
    import stat

    from ..fsutil import atomic_write_text

    try:
        st = conn.sftp.stat(remote)
    except OSError:
        return  # the job did not write it (it failed first); its output says why
    if stat.S_ISDIR(st.st_mode):
        fetch_tree(conn.sftp, remote, local)
        return
    with conn.sftp.open(remote, "r") as f:
        text = f.read().decode()
    try:
        atomic_write_text(local, text)
    except OSError as e:
        raise EdgekitError(f"{opt} {local}: cannot write it here: {e}") from None
