"""A bundle on a simulated Raspberry Pi: Debian bookworm arm64 (Python 3.11, aarch64) under qemu-user-static, built
once and cached by tools/arm64_rootfs.sh. The bundle is installed there as a user would on a Pi (copied, `pip
install -r requirements.txt`, the edgekit wheel built from this checkout) and `edgekit verify` reruns the host's
verification on the aarch64 runtimes: cosine >= 0.999 against the host's ONNX Runtime reference for ncnn, MNN,
TFLite and ONNX on PP-OCR cls and BlazeFace at fp32, on the Pi 4 (cortex-a72) and Pi 5 (cortex-a76) cores; what
ncnn fp16 does on the A76's fp16 arithmetic path is reported. The face pipeline runs a few frames there, and the
simulated Pi serves SSH (its own sshd, in the arm64 system) as the second device of a two-device fleet.
Emulation is 100-600x slower than a Pi: these are functional and numerical truths, not timings."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.remote import conftest as _ssh

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "arm64_rootfs.sh"
FORMATS = ["ncnn", "mnn", "tflite", "onnx"]
MODELS = ["ppocr-cls", "blazeface-short"]

# the loopback SSH fixtures (tests/remote/conftest.py), for the two-device fleet below
ssh_home, host_sshd, host_device = _ssh.ssh_home, _ssh.host_sshd, _ssh.host_device
# the first test pays for the exports, the cached rootfs check and the Pi's install (minutes under emulation)
pytestmark = [pytest.mark.arm64, pytest.mark.slow, pytest.mark.timeout(3600)]
TIMES: dict = {}  # what each stage took and the fp16 figures: printed at the end (pytest -s), and written to
# $EDGEKIT_ARM64_REPORT when it is set (the README's numbers come from there)


class Arm64:
    """The cached arm64 system: `run(cmd)` runs a shell command in it (chroot, qemu), `path(p)` is where a path
    inside it lies on the host."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(self, cmd: str, cpu: str = "cortex-a72", timeout: float = 1800, check: bool = True):
        r = subprocess.run(["bash", str(TOOL), "run", "--cpu", cpu, "--", cmd], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"arm64 ({cpu}) `{cmd}` exited {r.returncode}:\n{r.stdout[-4000:]}\n"
                                 f"{r.stderr[-4000:]}")
        return r

    def popen(self, cmd: str, cpu: str = "cortex-a72", **kw):
        return subprocess.Popen(["bash", str(TOOL), "run", "--cpu", cpu, "--", cmd], start_new_session=True, **kw)


def _timed(name):
    class _T:
        def __enter__(self):
            self.t = time.monotonic()

        def __exit__(self, *exc):
            TIMES[name] = round(time.monotonic() - self.t, 1)
    return _T()


@pytest.fixture(scope="session")
def arm64():
    if os.geteuid() != 0:
        pytest.fail("the arm64 system needs root (chroot, mounts); CI runs as root")
    for tool in ("debootstrap", "qemu-aarch64-static", "update-binfmts"):
        assert shutil.which(tool), f"{tool} is missing: .ci/run installs debootstrap qemu-user-static binfmt-support"
    with _timed("rootfs build (cached after the first)"):
        r = subprocess.run(["bash", str(TOOL), "build"], capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"tools/arm64_rootfs.sh build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    root = Path(subprocess.run(["bash", str(TOOL), "path"], capture_output=True, text=True, check=True).stdout.strip())
    yield Arm64(root)
    print("\narm64:", json.dumps(TIMES, indent=1))
    if os.environ.get("EDGEKIT_ARM64_REPORT"):
        Path(os.environ["EDGEKIT_ARM64_REPORT"]).write_text(json.dumps(TIMES, indent=1) + "\n")


def _imported(name: str, folder: Path) -> Path:
    """The MediaPipe model brought to ONNX by `edgekit import`, its comparison images named relative to `folder`:
    the importer records the paths it was given in the ONNX metadata, and a bundle refuses host paths."""
    import contextlib

    from edgekit.fixtures import MEDIAPIPE_MODELS, write_face_images
    from edgekit.importer import import_tflite

    fx = MEDIAPIPE_MODELS[name]
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(folder):
        images = [p.relative_to(folder) for p in write_face_images(folder / "import-images", fx.kind)]
        result = import_tflite(fx.path, out=folder / f"{name}.onnx", data=images, preprocessing=fx.preprocessing)
    assert result.ok, result.error
    return folder / f"{name}.onnx"


@pytest.fixture(scope="session")
def host_bundles(tmp_path_factory, ocr_exports, text_images):
    """On the host: PP-OCR cls (the session's export) and BlazeFace exported to ncnn, MNN, TFLite and ONNX at
    fp32 and bundled for the Raspberry Pi 5; ncnn fp16 of both in a second bundle."""
    import edgekit
    from edgekit.bundle import make_bundle
    from edgekit.fixtures import MEDIAPIPE_MODELS, OCR_MODELS, write_face_images

    out = tmp_path_factory.mktemp("arm64_exports")
    with _timed("host exports"):
        cls = ocr_exports("ppocr-cls")
        fx = OCR_MODELS["ppocr-cls"]
        lines = [str(p) for p in text_images[fx.kind]]
        cls_more = edgekit.export(fx.path, target="onnx", out=out / "cls", input_shapes=[fx.input_shape],
                                  data=lines, preprocessing=fx.preprocessing)
        cls16 = edgekit.export(fx.path, target="ncnn", out=out / "cls16", input_shapes=[fx.input_shape],
                               data=lines, preprocessing=fx.preprocessing, precision="fp16")
        face = MEDIAPIPE_MODELS["blazeface-short"]
        model = _imported("blazeface-short", out / "face")
        images = write_face_images(out / "face" / "images", face.kind, 2)
        face32 = edgekit.export(model, target=",".join(FORMATS), out=out / "face" / "fp32",
                                input_shapes=[face.input_shape], data=images, preprocessing=face.preprocessing)
        face16 = edgekit.export(model, target="ncnn", out=out / "face" / "fp16", input_shapes=[face.input_shape],
                                data=images, preprocessing=face.preprocessing, precision="fp16")
        lm = MEDIAPIPE_MODELS["face-landmark"]
        lm_model = _imported("face-landmark", out / "lm")
        landmark = edgekit.export(lm_model, target="onnx", out=out / "lm" / "out", input_shapes=[lm.input_shape],
                                  data=write_face_images(out / "lm" / "images", lm.kind, 2),
                                  preprocessing=lm.preprocessing)
    fp32 = [cls[f] for f in ("ncnn", "mnn", "tflite")] + list(cls_more) + list(face32)
    for r in fp32 + list(cls16) + list(face16) + list(landmark):
        assert r.ok, f"{r.format}: {r.error}"
    with _timed("bundle"):
        b32 = make_bundle([r.path for r in fp32], "raspberry-pi-5", out / "pi-bundle")
        b16 = make_bundle([r.path for r in [*cls16, *face16]], "raspberry-pi-5", out / "pi-bundle-fp16")
        # the pipeline's second model, in a bundle of its own (what a face app ships)
        bl = make_bundle([landmark[0].path, face32[FORMATS.index("onnx")].path], "raspberry-pi-5",
                         out / "face-app")
    return {"fp32": b32, "fp16": b16, "face-app": bl,
            "face-app nodes": {"detector": face32[FORMATS.index("onnx")].path.name,
                               "landmarker": landmark[0].path.name}}


@pytest.fixture(scope="session")
def pi(host_bundles, arm64, tmp_path_factory):
    """The bundles installed on the simulated Pi as a user would: copied over, a venv, `pip install -r
    requirements.txt` (from PyPI, aarch64 wheels; pip's cache is the arm64 cache folder's), the edgekit wheel."""
    src = tmp_path_factory.mktemp("edgekit_src")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(src / "dist"), str(src)], check=True, cwd=src, capture_output=True)
    wheel, = (src / "dist").glob("edgekit-*.whl")
    home = f"/root/edgekit-test-{uuid.uuid4().hex[:8]}"
    host_home = arm64.path(home)
    host_home.mkdir(parents=True)
    for name in ("fp32", "fp16", "face-app"):
        shutil.copytree(host_bundles[name], host_home / name)
    shutil.copy(wheel, host_home / wheel.name)
    # The Pi's venv is the one tools/arm64_rootfs.sh build set up (Python 3.11, the profiles' pinned aarch64 wheels,
    # cached): `pip install -r requirements.txt` then checks the bundle's pins against it and installs what is
    # missing, as on a Pi set up once; a fresh venv costs the full download and install under emulation instead.
    venv = os.environ.get("EDGEKIT_ARM64_VENV", "/opt/venv")
    with _timed("pi install (pip install -r requirements.txt, the wheel)"):
        arm64.run(f"cd {home} && {{ [ -x {venv}/bin/pip ] || python3 -m venv {venv}; }} && {venv}/bin/pip install -q "
                  f"-r fp32/requirements.txt -r fp16/requirements.txt -r face-app/requirements.txt && "
                  f"{venv}/bin/pip install -q --no-deps --force-reinstall {wheel.name}", timeout=3600)
    yield {"home": home, "venv": venv, "edgekit": f"{venv}/bin/edgekit", "arm64": arm64,
           "face-app nodes": host_bundles["face-app nodes"]}
    shutil.rmtree(host_home, ignore_errors=True)


def _verify(pi, bundle: str, cpu: str) -> dict:
    home = pi["home"]
    out = f"{home}/verify-{bundle}-{cpu}.json"
    with _timed(f"verify {bundle} on {cpu}"):
        r = pi["arm64"].run(f"cd {home} && {pi['edgekit']} verify {bundle} --json {out}", cpu=cpu, check=False)
    print(r.stdout)
    doc = json.loads(pi["arm64"].path(out).read_text())
    assert doc["device"]["machine"] == "aarch64"
    return {"exit": r.returncode, "doc": doc, "table": r.stdout}


@pytest.mark.parametrize("cpu", ["cortex-a72", "cortex-a76"])
def test_the_bundle_verifies_on_the_simulated_pi_at_fp32(pi, cpu):
    v = _verify(pi, "fp32", cpu)
    rows = v["doc"]["artifacts"]
    assert sorted({r["format"] for r in rows}) == sorted(FORMATS)
    assert len(rows) == len(FORMATS) * len(MODELS)
    for r in rows:
        assert r["status"] == "ok", r
        assert r["device"]["cosine"] >= 0.999, r
        assert r["precision"] == "fp32"
    assert v["exit"] == 0, v["table"]


def test_ncnn_fp16_on_the_a76_arithmetic_path_is_reported(pi):
    """The A72 (ARMv8.0) stores ncnn fp16 weights but computes in fp32: the host's figures again. The A76 (ARMv8.2)
    takes ncnn's fp16 arithmetic, which changes the error: measured, BlazeFace's scores move from max-abs 0.063
    to 0.77 (cosine 0.99998), past the fp16 tolerance. Recorded, not judged: fp16 is a choice to check on the
    device, which is what `verify` there is for."""
    a72, a76 = _verify(pi, "fp16", "cortex-a72"), _verify(pi, "fp16", "cortex-a76")
    figures = {}
    for core, v in (("cortex-a72", a72), ("cortex-a76", a76)):
        for r in v["doc"]["artifacts"]:
            assert r["device"].get("cosine") is not None, r  # it ran (no missing runtime, no error)
            figures.setdefault(r["artifact"], {"host": {"cosine": r["host"].get("cosine"),
                                                        "max_abs": r["host"].get("max_abs")}})[core] = {
                "cosine": r["device"]["cosine"], "max_abs": r["device"].get("max_abs"), "status": r["status"]}
    TIMES["fp16 figures"] = figures
    print(json.dumps(figures, indent=1))
    for name, f in figures.items():
        assert f["cortex-a72"]["status"] == "ok", (name, f)  # fp32 arithmetic: within the fp16 tolerance
        assert f["cortex-a76"]["cosine"] > 0.99, (name, f)
    # the A76 really took another arithmetic path: its errors differ from the A72's
    assert any(f["cortex-a76"]["max_abs"] != f["cortex-a72"]["max_abs"] for f in figures.values()), figures


def test_the_face_pipeline_runs_a_few_frames_on_the_simulated_pi(pi, arm64):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_sample_media
    finally:
        sys.path.pop(0)
    home = pi["home"]
    make_sample_media.write_video(arm64.path(f"{home}/face.avi"), make_sample_media.face_frames(4))
    nodes = pi["face-app nodes"]
    with _timed("face pipeline, 4 frames"):
        arm64.run(f"cd {home} && {pi['edgekit']} pipeline {pi['venv']}/share/edgekit/apps/face/graph.yaml "
                  f"--source face.avi --sink face-out.avi --backend onnx --max-frames 4 --summary-json face.json "
                  + " ".join(f"--artifact {n}=face-app/artifacts/{a}" for n, a in nodes.items()),
                  timeout=1800)
    summary = json.loads(arm64.path(f"{home}/face.json").read_text())
    print(json.dumps(summary)[:2000])
    assert arm64.path(f"{home}/face-out.avi").stat().st_size > 0


@pytest.fixture(scope="session")
def pi_sshd(arm64, ssh_home):
    """The simulated Pi 5's own sshd (the arm64 system's openssh-server, under qemu) on a free loopback port."""
    from tests.remote.sshd import Sshd

    inside = f"/root/sshd-{uuid.uuid4().hex[:8]}"
    arm64.path("/run/sshd").mkdir(parents=True, exist_ok=True)
    # sshd gives sessions a fresh environment: the Pi 5 core is set for them too
    server = Sshd(arm64.path(inside), ssh_home / ".ssh" / "id_ed25519.pub", inside=inside,
                  launch=["bash", str(TOOL), "run", "--cpu", "cortex-a76", "--"], extra="SetEnv QEMU_CPU=cortex-a76\n")
    with _timed("pi sshd start"):
        server.start(timeout=300)
    with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
        f.write(server.host_key_line())
    yield server
    server.stop()
    shutil.rmtree(arm64.path(inside), ignore_errors=True)


def test_a_two_device_fleet_host_and_simulated_pi_one_runtime_missing_there(pi, pi_sshd, host_device, host_bundles,
                                                                           ssh_home, tmp_path):
    """`edgekit verify BUNDLE --fleet devices.toml` on the host and the simulated Pi at once, one merged table.
    The Pi lacks MNN for this run: its MNN rows say which package to install, its other rows verify, and the host
    finishes; MNN is put back afterwards."""
    from tests.remote.conftest import fleet_file
    from tests.remote.test_ssh import edgekit_cli

    arm64, home = pi["arm64"], pi["home"]
    arm64.run(f"{pi['venv']}/bin/pip uninstall -y -q MNN")
    try:
        devices = [host_device, {"name": "pi5-sim", "address": f"ssh://root@127.0.0.1:{pi_sshd.port}",
                                 "profile": "raspberry-pi-5", "edgekit": pi["edgekit"], "workdir": f"{home}/remote"}]
        fleet = fleet_file(tmp_path / "devices.toml", devices, ssh_home)
        with _timed("fleet verify (host + simulated Pi 5)"):
            r = edgekit_cli(["verify", str(host_bundles["fp32"]), "--fleet", str(fleet), "--json",
                             str(tmp_path / "fleet.json")], ssh_home, timeout=3600)
        print(r.stdout)
        assert r.returncode == 1, r.stdout + r.stderr  # a row is missing its runtime
        assert "Traceback" not in r.stdout + r.stderr
        doc = json.loads((tmp_path / "fleet.json").read_text())
        by = {d["device"]: d for d in doc["devices"]}
        assert by["host"]["error"] is None and by["pi5-sim"]["error"] is None, doc["devices"]
        assert by["pi5-sim"]["report"]["device"]["machine"] == "aarch64"
        rows = [x for x in doc["rows"]]
        assert {x["device"] for x in rows} == {"host", "pi5-sim"}
        for x in rows:
            if x["device"] == "pi5-sim" and x["format"] == "mnn":
                assert x["status"] == "missing runtime" and "pip install MNN==" in x["note"], x
            else:
                assert x["status"] == "ok" and x["cosine"] >= 0.999, x
        assert "pi5-sim" in r.stdout and "missing runtime" in r.stdout
    finally:
        arm64.run(f"{pi['venv']}/bin/pip install -q -r {home}/fp32/requirements.txt")

