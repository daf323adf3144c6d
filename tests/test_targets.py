"""Device profiles (targets/*.toml) and the registry check's offline part: profiles complete and consistent, the
platform tags pip is given, answers cached and shown by `edgekit targets` without touching the network, and
`check_registry` driving the real pip against a local folder (--no-index). The TFLite interpreter choice.
About 10 s."""
from __future__ import annotations

import json
import sys
import zipfile

import pytest

from edgekit import backends
from edgekit.bundle import requirements_text
from edgekit.errors import EdgekitError
from edgekit.targets import Profile, cached_registry, check_registry, profiles
from tests.commands.test_cli import edgekit

CONVERTERS = {"tensorflow", "onnx2tf", "pnnx", "onnxslim", "tf-keras", "onnx-graphsurgeon", "sng4onnx", "torch",
              "tf2onnx"}


def test_every_profile_is_complete():
    profs = profiles()
    assert {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "generic-aarch64-linux",
            "desktop-x86_64"} <= set(profs)
    for name, p in profs.items():
        assert p.arch in ("aarch64", "x86_64") and p.cores > 0 and p.precision in ("fp32", "fp16", "int8"), name
        assert p.python.count(".") == 1 and p.glibc.count(".") == 1, name
        assert p.formats and set(p.formats) <= set(backends.formats()), name
        for fmt in p.formats:  # every preferred format has a pinned runtime: a bundle of it can be installed
            assert "==" in p.runtime_for(fmt), (name, fmt)
        for pin in p.requirements:
            assert "==" in pin, (name, pin)
            assert pin.split("==")[0].lower() not in CONVERTERS, (name, pin)
        assert p.registry, f"{name}: record the wheels measured on the registry"
        if p.arch == "aarch64":
            assert p.qemu_cpu, name
    assert profs["raspberry-pi-4"].qemu_cpu == "cortex-a72" and profs["raspberry-pi-5"].qemu_cpu == "cortex-a76"
    assert "TensorRT" in profs["jetson-orin-nano"].gpu


def test_platform_tags_cover_the_devices_glibc():
    p = Profile("x", "", "aarch64", 4, ["ncnn"], glibc="2.36")
    tags = p.platforms()
    assert tags[0] == "manylinux_2_36_aarch64" and "manylinux_2_17_aarch64" in tags
    assert "manylinux_2_37_aarch64" not in tags and tags[-1] == "manylinux2014_aarch64"


def test_requirements_text_pins_only_what_the_formats_need():
    p = profiles()["raspberry-pi-4"]
    text = requirements_text(p, ["ncnn"])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert "ncnn==1.0.20261020" in lines and not any(line.startswith(("MNN", "ai-edge-litert")) for line in lines)
    assert set(p.packages) <= set(lines)


def test_a_bad_profile_is_one_clear_error(tmp_path):
    (tmp_path / "board.toml").write_text('description = "x"\narch = "aarch64"\ncores = 4\nformats = ["ncnn"]\n'
                                         'wheels = 3\n')
    with pytest.raises(EdgekitError, match="unknown profile keys wheels"):
        profiles(tmp_path)
    (tmp_path / "board.toml").write_text('arch = "aarch64"\nruntimes = { ncnn = "ncnn==1",\n mnn = "x" }\n')
    with pytest.raises(EdgekitError, match="not valid TOML"):
        profiles(tmp_path)


def _wheel(folder, name, version):
    """A minimal real wheel file, for pip to find in a local folder."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        info = f"{name}-{version}.dist-info"
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


def test_check_registry_runs_pip_and_caches(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "ekprobe", "1.0")
    p = Profile("board", "", "aarch64", 4, ["ncnn"], packages=["ekprobe==1.0", "ekmissing==2.0"])
    cache = tmp_path / "registry.json"
    assert cached_registry(p, cache) == {}
    pip = [sys.executable, "-m", "pip", "--isolated"]
    answers = check_registry(p, cache, pip=pip, index=["--no-index", "--find-links", str(index)])
    assert answers["ekprobe==1.0"]["ok"] and answers["ekprobe==1.0"]["wheel"] == "ekprobe-1.0-py3-none-any.whl"
    assert not answers["ekmissing==2.0"]["ok"] and answers["ekmissing==2.0"]["why"]
    # cached: a second check does not run pip (a pip that cannot run would answer "pip did not run")
    again = check_registry(p, cache, pip=["/nonexistent/pip"])
    assert again == answers and cached_registry(p, cache) == answers
    assert check_registry(p, cache, pip=["/nonexistent/pip"], refresh=True)["ekprobe==1.0"]["why"].startswith(
        "pip did not run")


def test_targets_shows_cached_answers_offline(tmp_path):
    from edgekit.targets import _key

    p = profiles()["raspberry-pi-4"]
    cache = {_key(p, pkg): {"ok": True, "wheel": "w.whl", "checked": 2**31} for pkg in p.requirements}
    cache[_key(p, "MNN==3.6.1")] = {"ok": False, "why": "none", "checked": 2**31}
    (tmp_path / "edgekit").mkdir()
    (tmp_path / "edgekit" / "registry.json").write_text(json.dumps(cache))
    out = edgekit("targets", "--profile", "raspberry-pi-4", pre=f"import os; os.environ['XDG_CACHE_HOME'] = "
                  f"{str(tmp_path)!r}")
    assert out.returncode == 0, out.stderr
    assert "no wheel: MNN==3.6.1" in out.stdout and "raspberry-pi-5" not in out.stdout
    # answers are per arch, Python and glibc: the Pi 5 shares the Pi 4's, the Jetson (cp310) does not
    out = edgekit("targets", "--profile", "raspberry-pi-5", pre=f"import os; os.environ['XDG_CACHE_HOME'] = "
                  f"{str(tmp_path)!r}")
    assert out.returncode == 0 and "no wheel: MNN==3.6.1" in out.stdout
    out = edgekit("targets", "--profile", "jetson-orin-nano", pre=f"import os; os.environ['XDG_CACHE_HOME'] = "
                  f"{str(tmp_path)!r}")
    assert out.returncode == 0 and "not checked" in out.stdout
    out = edgekit("targets", "--profile", "pi-9")
    assert out.returncode == 2 and "unknown profile 'pi-9'" in out.stderr


def test_tflite_interpreter_choice(monkeypatch):
    """LiteRT first, tflite-runtime when LiteRT is absent (same Interpreter API); the env knob picks one; a
    real runner reports which one it runs on (tests/test_bundle.py runs TFLite artifacts through it)."""
    from edgekit.backends import tflite

    monkeypatch.delenv(tflite.RUNTIME_ENV, raising=False)
    assert tflite.interpreter_choice() == ("ai_edge_litert.interpreter", "ai-edge-litert")
    absent = ("edgekit_no_such_runtime.interpreter", "none")
    assert tflite.interpreter_choice((absent, *tflite.INTERPRETERS)) == tflite.INTERPRETERS[0]
    cls, dist = tflite.interpreter_class()
    assert dist == "ai-edge-litert" and cls.__module__.startswith("ai_edge_litert")
    monkeypatch.setenv(tflite.RUNTIME_ENV, "tflite-runtime")
    have_tflite_runtime = tflite.interpreter_choice() is not None
    assert tflite.BACKEND.available() == have_tflite_runtime
    if not have_tflite_runtime:
        with pytest.raises(EdgekitError, match="tflite-runtime"):
            tflite.interpreter_class()
