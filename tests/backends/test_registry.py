"""The backend registry: a third-party package adds a format through an entry point, without touching edgekit,
and every front end (export, run, check, targets) then treats it like a built-in one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgekit import backends
from edgekit.errors import EdgekitError
from tests.models import conv_net, save

PLUGIN = '''
"""A real backend from outside edgekit: ONNX Runtime on a copy of the normalised model, under its own name."""
from edgekit.backends.onnxruntime import OnnxRuntimeBackend


class CopyBackend(OnnxRuntimeBackend):
    name = "onnxcopy"
    runtime = "ONNX Runtime (a plugin)"
    extra = "onnxcopy"

    def install_hint(self):
        return "pip install edgekit-onnxcopy"


BACKEND = CopyBackend()
'''


@pytest.fixture
def plugin_path(tmp_path):
    site = tmp_path / "site"
    (site / "edgekit_onnxcopy").mkdir(parents=True)
    (site / "edgekit_onnxcopy" / "__init__.py").write_text(PLUGIN)
    dist = site / "edgekit_onnxcopy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edgekit-onnxcopy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edgekit.backends]\nonnxcopy = edgekit_onnxcopy\n")
    return site


def _edgekit(site, *args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_plugin_backend_exports_runs_and_checks_like_a_builtin(plugin_path, tmp_path):
    model = save(conv_net(), tmp_path / "conv.onnx")
    out = tmp_path / "out"
    proc = _edgekit(plugin_path, "export", model, "--target", "onnxcopy", "--input-shape", "x:1x3x16x16", "--out",
                    out, "--json", tmp_path / "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "ok" and result["manifest"]["format"] == "onnxcopy"
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32))
    proc = _edgekit(plugin_path, "run", out / "conv_onnxcopy", "--input", f"x={tmp_path / 'x.npy'}", cwd=tmp_path)
    assert proc.returncode == 0 and "prob: shape [1, 5]" in proc.stdout, proc.stdout + proc.stderr
    proc = _edgekit(plugin_path, "check", out / "conv_onnxcopy", cwd=tmp_path)
    assert proc.returncode == 0 and "PASS" in proc.stdout, proc.stdout + proc.stderr
    proc = _edgekit(plugin_path, "targets", cwd=tmp_path)
    assert proc.returncode == 0 and "onnxcopy" in proc.stdout and "a plugin" in proc.stdout


def test_a_broken_plugin_names_itself(tmp_path):
    site = tmp_path / "site"
    dist = site / "edgekit_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edgekit-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[edgekit.backends]\nbroken = edgekit_not_there\n")
    model = save(conv_net(), tmp_path / "conv.onnx")
    proc = _edgekit(site, "export", model, "--target", "broken", "--input-shape", "x:1x3x16x16", "--out",
                    tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the backend plugin edgekit_not_there failed to load" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_formats_and_devices_are_refused_with_the_known_ones(tmp_path):
    with pytest.raises(EdgekitError, match="known formats: onnx, ncnn, mnn, tflite, openvino"):
        backends.get("coreml")
    from edgekit.runner import load

    model = save(conv_net(), tmp_path / "conv.onnx")
    with pytest.raises(EdgekitError, match=r"runs on cpu, not 'vulkan' \(vulkan is for ncnn artifacts\)"):
        load(model, device="vulkan")
