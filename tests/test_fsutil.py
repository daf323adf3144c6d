from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from edgekit.fsutil import atomic_dir


def test_atomic_dir_appears_whole(tmp_path):
    dest = tmp_path / "artifact"
    with atomic_dir(dest) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not dest.exists()
    assert (dest / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_failure_leaves_nothing(tmp_path):
    dest = tmp_path / "artifact"
    with pytest.raises(RuntimeError):
        with atomic_dir(dest) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("converter crashed")
    assert list(tmp_path.iterdir()) == []


def test_no_silent_overwrite(tmp_path):
    dest = tmp_path / "artifact"
    dest.mkdir()
    (dest / "old").write_text("keep me")
    with pytest.raises(EdgekitError, match="--force"):
        with atomic_dir(dest):
            pass
    assert (dest / "old").read_text() == "keep me"
    with atomic_dir(dest, force=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


# --- owner-marked temporary names, the next run's sweep, the umask, and --out checked up front ---
import os  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from edgekit import fsutil  # noqa: E402


def _dead_tag() -> str:
    """The owner tag of a process that has exited (its pid is free or another process's now)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    tag = fsutil.owner_tag(proc.pid)
    proc.wait()
    assert not fsutil.owner_alive(*map(int, tag.split("-")))
    return tag


def test_a_killed_runs_leftovers_beside_the_destination_go_on_the_next_run(tmp_path):
    dead, live = _dead_tag(), fsutil.owner_tag()
    (tmp_path / f".tiny_tflite.{dead}.abcd1234.tmp").mkdir()           # another format's half-made artifact
    (tmp_path / f".tiny_tflite.{dead}.abcd1234.tmp" / "model.tflite").write_bytes(b"x")
    (tmp_path / f".r.json.{dead}.q1w2e3r4.tmp").write_text("{")         # a half-written file
    (tmp_path / f".keep.{live}.zzzz9999.tmp").mkdir()                   # a live run's: not ours to touch
    (tmp_path / ".unmarked.abcd.tmp").mkdir()                           # no owner in the name: left alone
    (tmp_path / f".old_art.{dead}.old").mkdir()                         # killed between the two renames
    with fsutil.atomic_dir(tmp_path / "tiny_onnx") as tmp:
        (tmp / "model.onnx").write_bytes(b"m")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".keep.{live}.zzzz9999.tmp", ".unmarked.abcd.tmp", "old_art", "tiny_onnx"])


def test_the_temp_dir_sweep_removes_only_dead_owners_folders(tmp_path):
    dead, live = _dead_tag(), fsutil.owner_tag()
    for name in (f"edgekit-{dead}-x1", f"edgekit-{live}-x2", "edgekit-tflite-abcd", "edgekit-abcdefgh"):
        (tmp_path / name).mkdir()
    assert [p.name for p in fsutil.sweep_temp(tmp_path)] == [f"edgekit-{dead}-x1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["edgekit-abcdefgh", f"edgekit-{live}-x2",
                                                                 "edgekit-tflite-abcd"])


def test_run_tempdir_holds_this_runs_scratch_and_children_see_it(tmp_path):
    before = tempfile.gettempdir(), os.environ.get("TMPDIR")
    with fsutil.run_tempdir(tmp_path) as root:
        assert root.parent == tmp_path and root.name.startswith(f"edgekit-{fsutil.owner_tag()}-")
        assert tempfile.gettempdir() == str(root)
        child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert child == str(root)
        (Path(tempfile.mkdtemp()) / "scratch").write_text("x")
    assert list(tmp_path.iterdir()) == []
    assert (tempfile.gettempdir(), os.environ.get("TMPDIR")) == before


def test_artifacts_get_the_umasks_modes_not_mkdtemps(tmp_path):
    old = os.umask(0o027)
    try:
        with fsutil.atomic_dir(tmp_path / "art") as tmp:
            (tmp / "sub").mkdir(mode=0o700)
            (tmp / "sub" / "w.bin").write_bytes(b"w")
            os.chmod(tmp / "sub" / "w.bin", 0o600)
            (tmp / "tool").write_text("#!/bin/sh\n")
            os.chmod(tmp / "tool", 0o700)
        fsutil.atomic_write_text(tmp_path / "art" / "edgekit.json", "{}")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    art = tmp_path / "art"
    assert (mode(art), mode(art / "sub"), mode(art / "sub" / "w.bin")) == (0o750, 0o750, 0o640)
    assert (mode(art / "tool"), mode(art / "edgekit.json")) == (0o750, 0o640)


def test_out_that_cannot_hold_output_is_one_clear_error_before_any_work(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(EdgekitError, match=r"^--out .*a-file is a file, not a folder$"):
        fsutil.check_writable_dir(f)
    with pytest.raises(EdgekitError, match=r"^--out .*a-file/out is not a folder: .*a-file is a file$"):
        fsutil.check_writable_dir(f / "out")
    with pytest.raises(EdgekitError, match=r"^--out /proc/edgekit-out is not writable \(in /proc\): "):
        fsutil.check_writable_dir(Path("/proc/edgekit-out"))
    if os.geteuid() != 0:  # root writes through permission bits
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(EdgekitError, match="is not writable.*permission denied"):
            fsutil.check_writable_dir(ro / "out")
    # a new nested folder in a writable place is fine, and the check creates nothing
    assert fsutil.check_writable_dir(tmp_path / "new" / "out") == tmp_path / "new" / "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
