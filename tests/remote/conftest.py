"""Loopback SSH devices for the remote tests: a real sshd on 127.0.0.1 (its own host key, port, authorized_keys),
a client key, a known_hosts file that trusts the server, and the device's `edgekit` (this checkout's)."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

import edgekit
from tests.remote.sshd import Sshd, keygen


@pytest.fixture(scope="session")
def ssh_home(tmp_path_factory) -> Path:
    """A user's home as ssh clients see it: ~/.ssh/id_ed25519 (the key the servers accept), known_hosts."""
    home = tmp_path_factory.mktemp("ssh_home")
    (home / ".ssh").mkdir(mode=0o700)
    keygen(home / ".ssh" / "id_ed25519")
    (home / ".ssh" / "known_hosts").write_text("")
    return home


def device_edgekit(folder: Path) -> Path:
    """The host device's `edgekit`: this interpreter with the edgekit under test (a venv's bin/edgekit on a Pi)."""
    script = folder / "edgekit"
    root = Path(edgekit.__file__).resolve().parents[1]
    script.write_text(f"#!/bin/sh\nPYTHONPATH={root} exec {sys.executable} -c "
                      "'import sys; from edgekit.cli import main; sys.exit(main())' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture(scope="session")
def host_sshd(tmp_path_factory, ssh_home):
    server = Sshd(tmp_path_factory.mktemp("sshd_host"), ssh_home / ".ssh" / "id_ed25519.pub").start()
    with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
        f.write(server.host_key_line())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def host_device(host_sshd, tmp_path_factory) -> dict:
    """The host as a fleet device: its fleet-file entry."""
    folder = tmp_path_factory.mktemp("host_device")
    return {"name": "host", "address": f"ssh://root@127.0.0.1:{host_sshd.port}", "profile": "desktop-x86-64",
            "edgekit": str(device_edgekit(folder)), "workdir": str(folder / "work")}


def fleet_file(path: Path, devices: list[dict], ssh_home: Path) -> Path:
    lines = []
    for d in devices:
        d = {"identity": str(ssh_home / ".ssh" / "id_ed25519"),
             "known_hosts": str(ssh_home / ".ssh" / "known_hosts"), **d}
        lines.append("[[device]]")
        lines += [f'{k} = "{v}"' for k, v in d.items() if v is not None]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def cli_env(ssh_home: Path) -> dict:
    """The environment of an `edgekit` run as that user (HOME decides ~/.ssh); no agent."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "EDGEKIT_KNOWN_HOSTS")}
    env["HOME"] = str(ssh_home)
    env["PYTHONPATH"] = str(Path(edgekit.__file__).resolve().parents[1])
    return env
