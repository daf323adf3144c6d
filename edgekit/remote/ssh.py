"""One SSH connection to a device (paramiko): host keys checked against known_hosts (an unknown key is an error
that says how to trust it), keys from the user's agent or ~/.ssh (or one named identity file), never a password.
Commands run on a pseudo-terminal, so when the connection drops or we stop, the device's sshd hangs it up and
the job gets SIGHUP (edgekit unwinds on it): nothing is left running there."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import EdgekitError
from .address import Address


class DeviceError(EdgekitError):
    """A device could not run the job (unreachable, refused, dropped, missing software): exit 1, for that device."""

    exit_code = 1


class _Reject:
    """paramiko's RejectPolicy with a message that names the key and the way to trust it."""

    def __init__(self, address: Address, known_hosts: list[Path]):
        self.address, self.known_hosts = address, known_hosts

    def missing_host_key(self, client, hostname, key):
        import base64
        import hashlib

        fp = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
        where = self.known_hosts[0] if self.known_hosts else Path("~/.ssh/known_hosts").expanduser()
        a = self.address
        raise DeviceError(f"{a}: unknown host key ({key.get_name()} SHA256:{fp}); if that is the device's key, "
                          f"trust it with: ssh-keyscan -p {a.port} {a.host} >> {where} (or ssh -p {a.port} "
                          f"{a.user}@{a.host} once and answer yes)")


def known_hosts_files(extra: str | os.PathLike | None = None) -> list[Path]:
    """The known_hosts files checked: a device's own (fleet file), $EDGEKIT_KNOWN_HOSTS, then ~/.ssh/known_hosts."""
    files = [Path(p).expanduser() for p in (extra, os.environ.get("EDGEKIT_KNOWN_HOSTS")) if p]
    files.append(Path("~/.ssh/known_hosts").expanduser())
    return files


class Connection:
    """An open SSH session to one device; a context manager that closes it."""

    def __init__(self, address: Address, identity: str | None = None, known_hosts: str | None = None,
                 timeout: float = 15.0):
        try:
            import paramiko
        except ImportError:
            raise EdgekitError("remote devices need paramiko: pip install 'edgekit[remote]'") from None
        self.address = address
        self.client = paramiko.SSHClient()
        files = known_hosts_files(known_hosts)
        for f in files:
            if f.is_file():
                try:
                    self.client.load_system_host_keys(str(f))  # adds to what is loaded; never written back
                except (OSError, paramiko.SSHException) as e:
                    raise EdgekitError(f"{f}: not a known_hosts file ({e})") from None
        self.client.set_missing_host_key_policy(_Reject(address, [f for f in files if f.is_file()] or files[-1:]))
        if identity and not Path(identity).expanduser().is_file():
            raise EdgekitError(f"{address}: identity file {identity}: no such file")
        a = address
        try:
            self.client.connect(a.host, port=a.port, username=a.user, timeout=timeout, banner_timeout=timeout,
                                auth_timeout=timeout, allow_agent=True, look_for_keys=True,
                                key_filename=str(Path(identity).expanduser()) if identity else None)
        except DeviceError:
            self.client.close()
            raise
        except paramiko.BadHostKeyException as e:
            self.client.close()
            raise DeviceError(f"{a}: the host key CHANGED (got {e.key.get_name()}, known_hosts has another): "
                              f"if the device was reinstalled, remove its line with ssh-keygen -R "
                              f"'{a.known_hosts_name}' and trust the new key; otherwise do not connect") from None
        except paramiko.AuthenticationException:
            self.client.close()
            raise DeviceError(f"{a}: authentication refused for user {a.user}: no key from the SSH agent or ~/.ssh "
                              f"(or the fleet's identity) is accepted; install yours with: ssh-copy-id -p {a.port} "
                              f"{a.user}@{a.host}") from None
        except (paramiko.ssh_exception.NoValidConnectionsError, ConnectionError, socket.timeout, socket.gaierror,
                OSError) as e:
            self.client.close()
            refused = (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)
            why = "connection refused (no sshd on that port?)" if isinstance(e, refused) else str(e) or type(e).__name__
            raise DeviceError(f"{a}: cannot reach the device: {why}") from None
        except paramiko.SSHException as e:
            self.client.close()
            raise DeviceError(f"{a}: SSH failed: {e}") from None
        self.client.get_transport().set_keepalive(5)  # a dropped link is noticed within seconds
        self._sftp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()

    @property
    def sftp(self):
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def run(self, command: str, on_output=None, timeout: float | None = None) -> tuple[int, str]:
        """Run `command` through the device's shell on a pseudo-terminal; return (exit status, output).
        `on_output(text)` sees the output as it comes. A connection lost before the exit status is a DeviceError."""
        import time

        transport = self.client.get_transport()
        try:
            chan = transport.open_session()
            chan.get_pty(term="dumb", width=160, height=50)
            chan.exec_command(command)
        except (EOFError, OSError, Exception) as e:  # paramiko raises SSHException subclasses and socket errors
            raise DeviceError(f"{self.address}: connection lost: {e or type(e).__name__}") from None
        chunks, start = [], time.monotonic()
        chan.settimeout(1.0)
        try:
            while True:
                try:
                    data = chan.recv(65536)
                except socket.timeout:
                    data = None
                if data:
                    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
                    chunks.append(text)
                    if on_output:
                        on_output(text)
                    continue
                if data == b"" or chan.closed:
                    break
                if not transport.is_active():
                    break
                if timeout and time.monotonic() - start > timeout:
                    raise DeviceError(f"{self.address}: the job ran past {timeout:.0f} s")
            if not chan.exit_status_ready():
                deadline = time.monotonic() + 5
                while not chan.exit_status_ready() and transport.is_active() and time.monotonic() < deadline:
                    time.sleep(0.05)
            status = chan.recv_exit_status() if chan.exit_status_ready() else -1
        finally:
            chan.close()  # the device's sshd hangs up the pty: the job, if still running, gets SIGHUP
        if status == -1:
            raise DeviceError(f"{self.address}: the connection dropped during the job (no exit status came back); "
                              "the device hung the job up")
        return status, "".join(chunks)

    def home(self) -> str:
        return self.sftp.normalize(".")
