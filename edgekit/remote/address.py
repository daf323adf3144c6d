"""`ssh://user@host[:port]`, the one spelling of a device's address (a fleet file uses it too)."""
from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

from ..errors import EdgekitError

_ADDR = re.compile(r"^ssh://(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[0-9a-fA-F:]+\]|[^@/:\s\[\]]+)(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class Address:
    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        port = "" if self.port == 22 else f":{self.port}"
        return f"ssh://{self.user}@{self.host}{port}"

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH (and paramiko) name the host in known_hosts: `[host]:port` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse(text: str) -> Address:
    m = _ADDR.match(text.strip())
    if not m:
        raise EdgekitError(f"'{text}' is not a device address: write ssh://user@host or ssh://user@host:port")
    port = int(m["port"] or 22)
    if not 0 < port < 65536:
        raise EdgekitError(f"'{text}': port {port} is not between 1 and 65535")
    host = m["host"].strip("[]")
    return Address(user=m["user"] or getpass.getuser(), host=host, port=port)
