"""The files a run writes: each refused in one line before anything runs when it is empty, a folder, named
twice, or (without `force`) already there from an earlier run; listed after the run."""
from __future__ import annotations

from pathlib import Path

from ..errors import EdgekitError


def output_path(what: str, path) -> Path:
    """`path` as a file to write, or one line naming `what` when it is empty or an existing folder."""
    if path is None or not str(path).strip():
        raise EdgekitError(f"{what}: no output file given (the path is empty)")
    p = Path(str(path))
    if p.is_dir():
        raise EdgekitError(f"{what}: {p} is a folder; give a file name in it")
    if p.parent.exists() and not p.parent.is_dir():
        raise EdgekitError(f"{what}: {p.parent} is a file, not a folder")
    return p


def check_outputs(paths: list[tuple[Path, str]], force: bool) -> None:
    """`paths`: (file, who writes it). Refuses a file written twice, or one that exists unless `force`."""
    seen: dict[Path, str] = {}
    for path, who in paths:
        key = path.resolve()
        if key in seen:
            raise EdgekitError(f"{path}: written by both {seen[key]} and {who}; give each its own file")
        seen[key] = who
        if path.exists() and not force:
            raise EdgekitError(f"{path} exists ({who}); add --force to overwrite it, or write elsewhere")


def stamps(paths: list[tuple[Path, str]]) -> dict[Path, tuple | None]:
    """Each file's (size, mtime) now, None where there is none: taken before a run, for `written`."""
    return {p: ((st := p.stat()).st_size, st.st_mtime_ns) if p.is_file() else None for p, _ in paths}


def written(paths: list[tuple[Path, str]], before: dict) -> list[Path]:
    """The files of `paths` the run made or changed (`before`: their `stamps` when it began)."""
    now = stamps(paths)
    return [p for p, _ in paths if now[p] is not None and now[p] != before.get(p)]
