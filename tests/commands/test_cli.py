"""The CLI as a user meets it: real subprocesses, exit codes, one-line errors, nothing written on bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.models import conv_net, save


def edgekit(*args, cwd=None, pre: str = "pass"):
    """Run `edgekit ARGS` in a fresh interpreter; `pre` runs first (e.g. to hide a backend)."""
    code = f"import sys; {pre}; from edgekit.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture()
def model(tmp_path):
    return save(conv_net(), tmp_path / "conv.onnx")


def _bad_inputs(tmp_path, model):
    notonnx = tmp_path / "notes.onnx"
    notonnx.write_text("hello, I am text")
    truncated = tmp_path / "trunc.onnx"
    truncated.write_bytes(open(model, "rb").read()[:300])
    return {
        "missing file": ([tmp_path / "nope.onnx"], "no such file"),
        "not onnx": ([notonnx], "not a valid ONNX model"),
        "truncated": ([truncated], "not a valid ONNX model"),
        "unknown target": ([model, "--target", "coreml"], "unknown target 'coreml'"),
        "shape parse": ([model, "--input-shape", "x:1by3"], "does not parse"),
        "shape name": ([model, "--input-shape", "image:1x3x16x16"], "model's inputs are: x"),
        "shape rank": ([model, "--input-shape", "x:1x3x16"], "3 dims given"),
    }


@pytest.mark.parametrize("case", ["missing file", "not onnx", "truncated", "unknown target", "shape parse",
                                  "shape name", "shape rank"])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, model, case):
    args, message = _bad_inputs(tmp_path, model)[case]
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = edgekit("export", *args, "--out", out)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even the out folder


def test_missing_backend_names_the_extra(tmp_path, model):
    proc = edgekit("export", model, "--target", "ncnn", "--out", tmp_path / "o", pre="sys.modules['ncnn'] = None")
    assert proc.returncode == 2
    assert "pip install 'edgekit[ncnn]'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    proc = edgekit("targets", pre="sys.modules['MNN'] = None")
    assert proc.returncode == 0 and "edgekit[mnn]" in proc.stdout


def test_export_run_inspect_round_trip(tmp_path, model):
    out = tmp_path / "out"
    proc = edgekit("export", model, "--target", "ncnn,openvino", "--out", out, "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout and "worst cosine" in proc.stdout
    assert [r["status"] for r in json.loads((tmp_path / "r.json").read_text())] == ["ok", "ok"]
    artifact = out / "conv_ncnn"
    assert (artifact / "edgekit.json").is_file() and (artifact / "model.ncnn.param").is_file()

    # an existing artifact is not overwritten without --force
    stamp = (artifact / "edgekit.json").read_text()
    proc = edgekit("export", model, "--target", "ncnn", "--out", out)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (artifact / "edgekit.json").read_text() == stamp
    assert edgekit("export", model, "--target", "ncnn", "--out", out, "--force").returncode == 0

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = edgekit("run", artifact, "--input", f"x={tmp_path / 'x.npy'}", "--threads", "1", "--save", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "feat: shape [1, 4, 16, 16] float32" in proc.stdout and "prob: shape [1, 5]" in proc.stdout
    import edgekit as ek

    ref = ek.load(model)({"x": x})
    np.testing.assert_allclose(np.load(tmp_path / "o" / "prob.npy"), ref["prob"], atol=1e-5)

    proc = edgekit("inspect", artifact)
    assert proc.returncode == 0
    for text in ("ncnn artifact of conv.onnx", "weights fp32, compute fp32", "in0", "dropped", "PASS"):
        assert text in proc.stdout, text
    proc = edgekit("inspect", model)
    assert proc.returncode == 0 and "Conv x1" in proc.stdout and "opset 13" in proc.stdout

    proc = edgekit("run", artifact, "--input", f"x={tmp_path / 'nope.npy'}")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_targets_lists_formats_and_profiles():
    proc = edgekit("targets")
    assert proc.returncode == 0
    for name in ("ncnn", "mnn", "tflite", "openvino", "raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano",
                 "desktop-x86_64"):
        assert name in proc.stdout


def test_profile_target_exports_its_formats(tmp_path, model):
    proc = edgekit("export", model, "--target", "raspberry-pi-5", "--out", tmp_path / "pi",
                   "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert [r["format"] for r in results] == ["ncnn", "mnn", "tflite"]
    assert results[0]["manifest"]["export_options"]["threads"] == 4
