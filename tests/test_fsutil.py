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
