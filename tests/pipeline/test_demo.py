"""`edgekit demo` twice in a row (issue 12): the second run works without --force, replacing the demo's own
outputs, and everything either run writes is inside its --out folder (the face results too)."""
from __future__ import annotations

import subprocess
import sys


def test_demo_runs_twice_and_writes_only_inside_its_folder(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cmd = [sys.executable, "-m", "edgekit.cli", "demo", "--target", "mnn", "--pipeline-backend", "onnx"]
    for run in (1, 2):
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"run {run}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        assert sorted(p.name for p in cwd.iterdir()) == ["edgekit-demo"], f"run {run} wrote outside its folder"
    out = cwd / "edgekit-demo"
    assert (out / "face_annotated.avi").stat().st_size > 10_000
    assert len((out / "face.jsonl").read_text().splitlines()) == 48
    assert f"wrote {out / 'face.jsonl'}" in proc.stdout
    assert not [p for p in out.rglob(".*") if "partial" in p.name or p.name.endswith(".tmp")]
    help_text = subprocess.run([*cmd[:4], "--help"], capture_output=True, text=True).stdout
    assert "replaces its own earlier outputs" in " ".join(help_text.split())
