"""An artifact is untrusted input: every file its manifest names stays inside its folder and matches the sha256
recorded at export, and a malformed manifest is one clear error, before any runtime reads a byte of it (a
runtime handed corrupted weights can crash the process: LiteRT segfaults on a truncated .tflite)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

FORMATS = ["onnx", "ncnn", "mnn", "tflite", "openvino"]


def edgekit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def artifacts(conv_exports, conv_model, tmp_path_factory):
    """conv_net in every format, plus an onnx-format artifact."""
    import edgekit as ek

    out = tmp_path_factory.mktemp("onnx_artifact")
    (r,) = ek.export(conv_model, target="onnx", out=out, input_shapes=["x:1x3x16x16"])
    assert r.ok, r.error
    return {**{f: conv_exports[f].path for f in FORMATS[1:]}, "onnx": r.path}


def _copy(src, tmp_path):
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _edit_manifest(folder, change):
    path = folder / "edgekit.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _assert_refused(folder, tmp_path, *words):
    """run, check and bench each refuse with one line (exit 2, no traceback) naming what is wrong."""
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    for args in (["run", folder, "--input", f"x={tmp_path / 'x.npy'}", "--save", tmp_path / "saved"],
                 ["check", folder], ["bench", folder, "--iterations", "1", "--min-seconds", "0", "-q"]):
        proc = edgekit(*args)
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        for w in words:
            assert w in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_weights_are_refused_naming_format_and_file(artifacts, tmp_path, fmt):
    folder = _copy(artifacts[fmt], tmp_path)
    manifest = json.loads((folder / "edgekit.json").read_text())
    role, name = max(manifest["files"].items(), key=lambda kv: (folder / kv[1]).stat().st_size)
    data = bytearray((folder / name).read_bytes())
    if fmt == "tflite":
        data = data[: len(data) // 2]  # truncated: LiteRT would segfault on it
    else:
        for i in range(len(data) // 3, len(data), max(1, len(data) // 64)):
            data[i] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    _assert_refused(folder, tmp_path, name, f"the {fmt} artifact is corrupted", "sha256")


@pytest.mark.parametrize("how", ["parent", "absolute"])
def test_manifest_paths_outside_the_folder_are_refused(artifacts, tmp_path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(artifacts["onnx"] / "model.onnx", outside / "model.onnx")
    folder = _copy(artifacts["onnx"], tmp_path)
    target = "../outside/model.onnx" if how == "parent" else str(outside / "model.onnx")
    _edit_manifest(folder, lambda d: d["files"].update(model=target))
    _assert_refused(folder, tmp_path, "outside the artifact folder")


def test_external_data_that_escapes_the_artifact_is_refused(artifacts, tmp_path):
    """A crafted onnx-format artifact (with a matching sha256, as an attacker would write it) whose weights are
    external data pointing at /etc/passwd: the runner must not read those bytes (issue: `run --save` copied
    them into its output)."""
    from edgekit.fsutil import sha256

    folder = _copy(artifacts["onnx"], tmp_path)
    model = onnx.load(str(folder / "model.onnx"))
    w = model.graph.initializer[0]
    arr = numpy_helper.to_array(w)
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../../../../../../../etc/passwd"), ("offset", "0"),
                       ("length", str(arr.size * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    with open(folder / "model.onnx", "wb") as f:
        f.write(model.SerializeToString())
    _edit_manifest(folder, lambda d: d["checksums"].update(model=sha256(folder / "model.onnx")))
    _assert_refused(folder, tmp_path, "outside the model's folder")


@pytest.mark.parametrize("case, change, words", [
    ("a list", lambda d: [d], ["a JSON list, not an object"]),
    ("string schema", lambda d: {**d, "schema": "1"}, ["schema '1' is not a number"]),
    ("unknown dtype", lambda d: {**d, "inputs": [{**d["inputs"][0], "dtype": "float33"}]}, ["unknown dtype"]),
    ("inputs as a string", lambda d: {**d, "inputs": "x"}, ["malformed manifest"]),
    ("missing weight file", None, ["model.ncnn.bin is missing"]),
    ("no checksums", lambda d: {**d, "checksums": {}}, ["records no sha256", "re-export"]),
])
def test_malformed_manifests_are_one_clear_error(artifacts, tmp_path, case, change, words):
    folder = _copy(artifacts["ncnn"], tmp_path)
    if change is None:
        (folder / "model.ncnn.bin").unlink()
    else:
        path = folder / "edgekit.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    _assert_refused(folder, tmp_path, *words)
