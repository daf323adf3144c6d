"""Atomic output: artifacts appear whole or not at all, and nothing is overwritten silently.

Temporary folders and files are marked with their owner (`<pid>-<process start time>` in the name), so that
a later run can remove those a killed run left behind (`sweep_stale`, `sweep_temp`) without touching a live
run's. Final files and folders get the modes the umask gives, as with any other tool (not mkdtemp's 0700)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import EdgekitError

# `<pid>-<start>`: the start time (whole seconds since the epoch) tells a reused pid from the owner
_TAG = r"(?P<pid>\d+)-(?P<start>\d+)"
TEMP_PREFIX = "edgekit-"  # per-run temp folders: edgekit-<pid>-<start>-XXXXXXXX in the temp dir


def _start_time(pid: int) -> int | None:
    import psutil

    try:
        return int(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return None
    except Exception:  # cannot tell (another user's process, no /proc): treat as alive
        return -1


_OWN: dict[int, str] = {}


def owner_tag(pid: int | None = None) -> str:
    """`<pid>-<start time>` of this process (or `pid`): the mark in temporary names."""
    pid = os.getpid() if pid is None else pid
    if pid != os.getpid():
        return f"{pid}-{_start_time(pid)}"
    if pid not in _OWN:  # one lookup per process (a forked child has its own pid, so its own tag)
        _OWN[pid] = f"{pid}-{_start_time(pid)}"
    return _OWN[pid]


def owner_alive(pid: int, start: int) -> bool:
    now = _start_time(pid)
    return now is not None and (now == -1 or abs(now - start) <= 1)


def umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask has to set it to read it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def apply_umask(path: Path) -> None:
    """Give `path` (a file or a folder tree) the modes a plain open()/mkdir() would have: 0666 & ~umask for
    files (0777 & ~umask for folders and for files with an execute bit)."""
    mask = umask()
    path = Path(path)

    def fix(p: Path, is_dir: bool) -> None:
        mode = 0o777 if is_dir or p.stat().st_mode & 0o111 else 0o666
        os.chmod(p, mode & ~mask)

    if path.is_dir() and not path.is_symlink():
        fix(path, True)
        for root, dirs, files in os.walk(path):
            for d in dirs:
                if not os.path.islink(os.path.join(root, d)):
                    fix(Path(root, d), True)
            for f in files:
                if not os.path.islink(os.path.join(root, f)):
                    fix(Path(root, f), False)
    elif path.exists() and not path.is_symlink():
        fix(path, False)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def sweep_stale(dest: Path) -> list[Path]:
    """Remove what killed runs left in `dest`'s folder: `.NAME.<pid>-<start>.*.tmp` of a dead owner (whatever
    NAME: an export to another format cleans up too); a dead owner's `.NAME.<pid>-<start>.old` (an artifact
    that was being replaced) is put back as NAME when NAME is missing, else removed. Returns what it removed."""
    dest = Path(dest)
    pat = re.compile(rf"\.(?P<name>.+)\.{_TAG}\.(?:[^.]+\.tmp|old)")
    removed = []
    with contextlib.suppress(OSError):
        for p in dest.parent.iterdir():
            m = pat.fullmatch(p.name)
            if not m or owner_alive(int(m["pid"]), int(m["start"])):
                continue
            if p.name.endswith(".old") and not os.path.lexists(p.with_name(m["name"])):
                with contextlib.suppress(OSError):
                    os.rename(p, p.with_name(m["name"]))
                    continue
            _remove(p)
            removed.append(p)
    return removed


def sweep_temp(tmpdir: Path | None = None) -> list[Path]:
    """Remove `edgekit-<pid>-<start>-*` folders of dead owners from the temp dir (unmarked ones, such as
    `export --keep-workdir` folders, stay). Returns them."""
    tmpdir = Path(tmpdir or tempfile.gettempdir())
    pat = re.compile(rf"{TEMP_PREFIX}{_TAG}-.*")
    removed = []
    with contextlib.suppress(OSError):
        for p in tmpdir.iterdir():
            m = pat.fullmatch(p.name)
            if m and p.is_dir() and not p.is_symlink() and not owner_alive(int(m["pid"]), int(m["start"])):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


@contextlib.contextmanager
def run_tempdir(base: Path | None = None):
    """One owner-marked temp folder for this run (`edgekit-<pid>-<start>-XXXX`), removed on the way out; while
    it is open, tempfile and child processes (TMPDIR) put their scratch in it, so a killed run's scratch is
    one folder the next run removes (`sweep_temp`)."""
    base = Path(base or tempfile.gettempdir())
    sweep_temp(base)
    root = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{owner_tag()}-", dir=base)
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = root, root
    try:
        yield Path(root)
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(root, ignore_errors=True)


def check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not force:
        raise EdgekitError(f"{dest} already exists; pass --force to overwrite it")


def check_output_files(args, flags: tuple[str, ...]) -> None:
    """Before a command works: each report file it was asked to write (`--json F`, ...) must be a file name in a
    writable folder, not a folder, so that a finished run is not lost to a traceback at the very end."""
    for flag in flags:
        path = getattr(args, flag, None)
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise EdgekitError(f"--{flag} {path} is a folder; give a file name in it")
        check_writable_dir(path.parent, f"--{flag} {path}: the folder")


def check_writable_dir(folder: Path, what: str = "--out") -> Path:
    """Fail early, with one line (EdgekitError, exit 2), when `folder` cannot hold output: it is a file, a path
    through a file, or on a location this process cannot write (read-only, no permission). Creates nothing:
    the nearest existing ancestor is probed with a temporary file that is removed at once. Returns the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EdgekitError(f"{what} {folder} is a file, not a folder")
    probe_in = folder
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise EdgekitError(f"{what} {folder} is not a folder: {probe_in} is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".edgekit-probe.{owner_tag()}.", suffix=".tmp", dir=probe_in)
    except OSError as e:
        why = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENOSPC: "no space left"}.get(e.errno, e.strerror)
        where = "" if probe_in == folder else f" (in {probe_in})"
        raise EdgekitError(f"{what} {folder} is not writable{where}: {why}") from None
    os.close(fd)
    os.unlink(probe)
    return folder


@contextlib.contextmanager
def atomic_dir(dest: Path, force: bool = False):
    """Yield a temporary folder beside `dest`; on success it replaces `dest` in one rename.

    On an exception (KeyboardInterrupt and the CLI's SIGTERM/SIGHUP included) the temporary folder is removed
    and `dest` is untouched; what a killed run left beside `dest` is removed first (`sweep_stale`)."""
    dest = Path(dest)
    check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(dest)
    tag = owner_tag()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{tag}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        apply_umask(tmp)
        old = None
        if dest.exists():
            check_destination(dest, force)
            old = dest.with_name(f".{dest.name}.{tag}.old")
            os.rename(dest, old)
        os.rename(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str, force: bool = True) -> None:
    path = Path(path)
    check_destination(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
