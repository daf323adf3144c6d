"""Bundles and `edgekit verify` on the real PP-OCR cls artifacts (the session's export, plus its ONNX format):
the layout, no host paths, verify's table and JSON, tampered / extra / missing files refused, a missing runtime
named per row, .tar.gz bundles, bench over a bundle. About 40 s on 2 cores after the session's cls export."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import BUNDLE_NAME, make_bundle, read_bundle, requirements_text, verify_bundle
from edgekit.errors import EdgekitError
from edgekit.fixtures import OCR_MODELS
from edgekit.targets import profiles
from tests.commands.test_cli import edgekit

pytestmark = pytest.mark.slow
TARGET = "raspberry-pi-5"


@pytest.fixture(scope="session")
def cls_artifacts(ocr_exports, tmp_path_factory, text_images):
    """PP-OCR cls as ncnn, MNN, TFLite, OpenVINO (the session's export) and ONNX (exported here)."""
    import edgekit as ek

    fx = OCR_MODELS["ppocr-cls"]
    arts = {fmt: r.path for fmt, r in ocr_exports("ppocr-cls").items()}
    (onnx,) = ek.export(fx.path, target="onnx", out=tmp_path_factory.mktemp("cls_onnx"), input_shapes=[fx.input_shape],
                        data=[str(p) for p in text_images[fx.kind]], samples=3, preprocessing=fx.preprocessing)
    arts["onnx"] = onnx.path
    return arts


@pytest.fixture(scope="session")
def bundle(cls_artifacts, tmp_path_factory, text_images):
    fx = OCR_MODELS["ppocr-cls"]
    out = tmp_path_factory.mktemp("bundles") / "pi-bundle"
    return make_bundle(list(cls_artifacts.values()), TARGET, out, data=[str(p) for p in text_images[fx.kind]])


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    dest = tmp_path / bundle.name
    shutil.copytree(bundle, dest)
    return dest


def test_layout_and_hashes(bundle, cls_artifacts):
    doc = json.loads((bundle / BUNDLE_NAME).read_text())
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {BUNDLE_NAME}
    assert set(doc["files"]) == on_disk
    assert doc["schema"] == 1 and doc["target"]["name"] == TARGET and doc["target"]["arch"] == "aarch64"
    assert {e["format"] for e in doc["artifacts"]} == set(cls_artifacts)
    for e in doc["artifacts"]:
        name = e["name"]
        samples = sorted((bundle / "samples" / name).glob("*.npz"))
        refs = sorted((bundle / "reference" / name).glob("*.npz"))
        assert len(samples) == len(refs) == e["samples"] == 3  # the three text lines given
        with np.load(samples[0]) as z:
            assert list(z.files) == ["x"] and z["x"].shape == (1, 3, 48, 192)  # ONNX input names and shapes
        assert e["host"]["measured"] and e["host"]["cosine"] >= 0.999 and e["export"]["cosine"] >= 0.999
        assert e["runtime"] == profiles()[TARGET].runtimes[e["format"]]
    for f in ("requirements.txt", "run.py", "README.md"):
        assert (bundle / f).is_file()


def test_requirements_are_runtime_only(bundle):
    reqs = [line for line in (bundle / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert all("==" in r for r in reqs), reqs  # pinned
    names = {r.split("==")[0].lower() for r in reqs}
    assert {"ncnn", "mnn", "onnxruntime", "ai-edge-litert", "openvino", "numpy"} <= names
    assert not names & {"tensorflow", "onnx2tf", "pnnx", "onnxslim", "tf-keras", "onnx-graphsurgeon", "torch"}
    # only the runtimes of the formats bundled
    assert "openvino" not in requirements_text(profiles()[TARGET], ["ncnn"])


def test_no_host_path_in_the_bundle(bundle, cls_artifacts):
    fx = OCR_MODELS["ppocr-cls"]
    host = {str(Path(p).resolve().parent) for p in cls_artifacts.values()} | {
        str(fx.path.parent), sys.prefix, str(Path.home()), str(Path(__file__).resolve().parent.parent)}
    for p in bundle.rglob("*"):
        if p.is_file():
            blob = p.read_bytes()
            for root in host:
                assert root.encode() not in blob, f"{p.relative_to(bundle)} names {root}"
    for m in bundle.glob("artifacts/*/edgekit.json"):
        assert "path" not in json.loads(m.read_text())["source"]


def test_verify_on_this_host(bundle, tmp_path):
    report = verify_bundle(bundle)
    assert report.passed and len(report.artifacts) == 5
    for a in report.artifacts:
        assert a.device["cosine"] >= 0.999 and a.device["samples"] == 3
        # the same runtime on the same machine as the bundle's host figures: the same numbers
        assert a.device["max_abs"] == pytest.approx(a.host["max_abs"], rel=1e-3, abs=1e-9)
    out = edgekit("verify", bundle, "--json", tmp_path / "v.json")
    assert out.returncode == 0, out.stderr
    assert "host cosine" in out.stdout and "device cosine" in out.stdout
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["passed"] and data["device"]["machine"] and data["target"] == TARGET


@pytest.mark.parametrize("damage, message", [
    ("change", "does not match its sha256"),
    ("extra", "not in bundle.json"),
    ("missing", "is missing"),
    ("link", "is a link"),
    ("manifest", "does not match its sha256"),
])
def test_verify_refuses_a_bundle_that_does_not_match(bundle, tmp_path, damage, message):
    b = copy_of(bundle, tmp_path)
    art = next((b / "artifacts").glob("*_ncnn"))
    if damage == "change":
        data = bytearray((art / "model.ncnn.bin").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (art / "model.ncnn.bin").write_bytes(bytes(data))
    elif damage == "extra":
        (b / "samples" / "extra.npz").write_bytes(b"PK\x03\x04")
    elif damage == "missing":
        next((b / "reference").rglob("*.npz")).unlink()
    elif damage == "link":
        os.symlink("/etc/passwd", b / "passwd")
    elif damage == "manifest":  # the host figures the table shows are part of the bundle too
        (art / "edgekit.json").write_text((art / "edgekit.json").read_text().replace('"fp32"', '"fp16"', 1))
    with pytest.raises(EdgekitError, match=message):
        read_bundle(b)
    out = edgekit("verify", b)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_missing_runtime_names_the_package(bundle, tmp_path):
    """With the TFLite runner pointed at tflite-runtime, which this host lacks, the tflite row says what to
    install; the other formats still run; exit 1."""
    out = edgekit("verify", bundle, "--json", tmp_path / "v.json", pre="import os; "
                  "os.environ['EDGEKIT_TFLITE_RUNTIME'] = 'tflite-runtime'")
    assert out.returncode == 1, out.stderr
    rows = {a["format"]: a for a in json.loads((tmp_path / "v.json").read_text())["artifacts"]}
    assert rows["tflite"]["status"] == "missing runtime" and rows["tflite"]["install"] == "ai-edge-litert==2.1.0"
    assert all(a["status"] == "ok" for f, a in rows.items() if f != "tflite")
    assert "pip install ai-edge-litert==2.1.0" in out.stdout


def test_tar_gz_bundle_and_force(cls_artifacts, tmp_path):
    arts = [cls_artifacts["ncnn"], cls_artifacts["onnx"]]
    out = make_bundle(arts, TARGET, tmp_path / "pi.tar.gz", samples=1)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert all(n == "pi" or n.startswith("pi/") for n in names) and "pi/bundle.json" in names
        assert all(m.uid == 0 and not m.uname for m in tar.getmembers())
    report = verify_bundle(out)
    assert report.passed and {a.format for a in report.artifacts} == {"ncnn", "onnx"}
    before = out.read_bytes()
    with pytest.raises(EdgekitError, match="--force"):
        make_bundle(arts, TARGET, out, samples=1)
    assert out.read_bytes() == before  # untouched
    make_bundle(arts[:1], TARGET, out, samples=1, force=True)
    assert {a.format for a in verify_bundle(out).artifacts} == {"ncnn"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left beside it


def test_bundle_cli_errors(cls_artifacts, tmp_path):
    art = cls_artifacts["ncnn"]
    cases = [
        (["bundle", art, "-t", "raspberry-pi-9", "-o", tmp_path / "b"], "unknown device profile 'raspberry-pi-9'"),
        (["bundle", tmp_path, "-t", TARGET, "-o", tmp_path / "b"], "not an artifact folder"),
        (["bundle", art, art, "-t", TARGET, "-o", tmp_path / "b"], "same folder name"),
        (["verify", tmp_path], "not a bundle"),
        (["verify", tmp_path / "nope.tar.gz"], "no such file"),
    ]
    for args, message in cases:
        out = edgekit(*args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
    (tmp_path / "b").mkdir()
    out = edgekit("bundle", art, "-t", TARGET, "-o", tmp_path / "b", "--samples", "1")
    assert out.returncode == 2 and "--force" in out.stderr
    out = edgekit("bundle", art, "-t", TARGET, "-o", tmp_path / "b", "--samples", "1", "--force", "-q")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b" / BUNDLE_NAME).is_file()


def test_bench_on_a_bundle(bundle, tmp_path):
    out = edgekit("bench", bundle, "--iterations", "3", "--min-seconds", "0", "--warmup", "1", "--threads", "1",
                  "--memory", "inprocess", "--json", tmp_path / "b.json", "-q")
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "b.json").read_text())["results"]
    assert {r["format"] for r in results} == {"ncnn", "mnn", "tflite", "openvino", "onnx"}
    b = copy_of(bundle, tmp_path)
    (b / "run.py").write_text("print('changed')\n")
    out = edgekit("bench", b, "--iterations", "1", "--min-seconds", "0")
    assert out.returncode == 2 and "run.py does not match" in out.stderr


def test_verify_needs_no_converter(bundle):
    """The device path imports no converter: verify passes with onnxslim, onnx2tf, TensorFlow and pnnx hidden
    (a device installs only requirements.txt)."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in ("onnxslim", "onnx2tf", "tensorflow", "pnnx", "tf_keras"))
    out = edgekit("verify", bundle, "-q", pre=hide)
    assert out.returncode == 0, out.stdout + out.stderr
