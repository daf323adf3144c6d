"""Copy a local folder (or file) to a device, content-addressed: the device keeps a hash manifest beside the copy
(`<copy>.edgekit-sync.json`, relative path -> sha256; not inside it: a bundle holds only its own files) and only
files whose hash changed are sent, each to a temporary name renamed into place. `edgekit verify` rechecks every
file's hash on the device, so a copy edited there is caught, not trusted."""
from __future__ import annotations

import hashlib
import json
import posixpath
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekitError
from ..fsutil import sha256

MANIFEST = ".edgekit-sync.json"


@dataclass
class Pushed:
    remote: str  # the remote path that stands for the local one
    sent: int = 0
    kept: int = 0
    removed: int = 0
    bytes_sent: int = 0


def local_files(path: Path) -> dict[str, Path]:
    if path.is_file():
        return {path.name: path}
    files = {}
    for p in sorted(path.rglob("*")):
        if p.is_symlink():
            raise EdgekitError(f"{p}: a symbolic link; copy what it points to into {path} first")
        if p.is_file():
            files[p.relative_to(path).as_posix()] = p
    return files


def remote_name(path: Path) -> str:
    """One folder per local path on the device: its name plus a short hash of where it is here (the host's path
    itself is not written there)."""
    tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    return f"{path.name}-{tag}"


def makedirs(sftp, folder: str) -> None:
    parts, cur = folder.split("/"), ""
    for part in parts:
        cur = f"{cur}/{part}" if cur else (part or "/")
        if cur == "/":
            continue
        try:
            sftp.stat(cur)
        except FileNotFoundError:
            sftp.mkdir(cur)


def push(sftp, path: Path, remote_root: str) -> Pushed:
    """Make `remote_root/<remote_name(path)>` hold what `path` holds; return what was sent."""
    path = Path(path)
    files = local_files(path)
    dest = posixpath.join(remote_root, remote_name(path))
    makedirs(sftp, dest)
    try:
        with sftp.open(dest + MANIFEST, "r") as f:
            had = json.loads(f.read().decode())
        if not isinstance(had, dict):
            had = {}
    except (OSError, ValueError):
        had = {}
    now = {rel: sha256(p) for rel, p in files.items()}
    out = Pushed(remote=posixpath.join(dest, path.name) if path.is_file() else dest)
    for rel, digest in now.items():
        target = posixpath.join(dest, rel)
        if had.get(rel) == digest and _exists(sftp, target):
            out.kept += 1
            continue
        makedirs(sftp, posixpath.dirname(target))
        tmp = f"{target}.{uuid.uuid4().hex[:8]}.part"
        sftp.put(str(files[rel]), tmp)
        sftp.posix_rename(tmp, target)
        out.sent += 1
        out.bytes_sent += files[rel].stat().st_size
    for rel in set(had) - set(now):
        try:
            sftp.remove(posixpath.join(dest, rel))
            out.removed += 1
        except OSError:
            pass
    tmp = f"{dest}{MANIFEST}.{uuid.uuid4().hex[:8]}.part"
    with sftp.open(tmp, "w") as f:
        f.write(json.dumps(now, indent=1, sort_keys=True))
    sftp.posix_rename(tmp, dest + MANIFEST)
    return out


def _exists(sftp, path: str) -> bool:
    try:
        return stat.S_ISREG(sftp.stat(path).st_mode)
    except OSError:
        return False


def fetch_tree(sftp, remote: str, local: Path) -> None:
    """Bring a remote folder's files back (a job's --save folder) into `local`."""
    local.mkdir(parents=True, exist_ok=True)
    for entry in sftp.listdir_attr(remote):
        src, dst = posixpath.join(remote, entry.filename), local / entry.filename
        if stat.S_ISDIR(entry.st_mode):
            fetch_tree(sftp, src, dst)
        elif stat.S_ISREG(entry.st_mode):
            sftp.get(src, str(dst))
