"""Real OpenSSH servers on 127.0.0.1 for the remote tests: each on a free port, with its own host key,
authorized_keys and config in a folder of its own (root login with a key only; no passwords anywhere)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class Sshd:
    """`folder` holds everything; `inside` is how sshd sees `folder` (a chroot's view) and `launch` the
    command prefix that starts it there (nothing for the host)."""

    def __init__(self, folder: Path, client_pub: Path, inside: str | None = None, launch: list[str] | None = None,
                 extra: str = ""):
        self.folder, self.inside = folder, inside or str(folder)
        self.launch = launch or []
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        keygen(folder / "host_key")
        shutil.copy(client_pub, folder / "authorized_keys")
        inside = self.inside
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {inside}/host_key\n"
            f"AuthorizedKeysFile {inside}/authorized_keys\nPidFile {inside}/sshd.pid\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
            "MaxStartups 50\n" + extra)
        self.proc = None

    def host_key_line(self) -> str:
        kind, key = (self.folder / "host_key.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def start(self, timeout: float = 120) -> Sshd:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        if self.launch:  # a command line that takes the sshd command as one string (the arm64 system's `run`)
            cmd = self.launch + [f"exec /usr/sbin/sshd -D -e -f {self.inside}/sshd_config"]
        else:
            cmd = [SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")]
        self.log = open(self.folder / "sshd.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(5)
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"sshd did not listen on {self.port} within {timeout} s")

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener), to drop a connection the hard way."""
        import psutil

        try:
            listener = psutil.Process(self.listener_pid())
        except (psutil.NoSuchProcess, ValueError):
            return []
        return [c.pid for c in listener.children(recursive=False)]

    def listener_pid(self) -> int:
        return int((self.folder / "sshd.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with_pid = []
            try:
                with_pid = [self.listener_pid()]
            except (OSError, ValueError):
                pass
            for pid in with_pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
