"""No network: every command (export of all four formats, check, bench, run, import, pipeline, demo) succeeds with
the network gone (a new network namespace, `unshare -rn`), and nothing edgekit runs (converters included, in child
processes too) tries to reach the internet or pip-install (an audit hook in every Python process logs it)."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from edgekit.fixtures import OCR_MODELS

AUDIT = textwrap.dedent('''
    import os, sys
    _log = os.environ["EDGEKIT_AUDIT_LOG"]
    def _hook(event, args):
        if event == "socket.connect":
            addr = args[1]
            host = addr[0] if isinstance(addr, tuple) else str(addr)
            if not (str(host).startswith("127.") or host in ("::1", "localhost") or str(host).startswith("/")):
                with open(_log, "a") as f: f.write(f"connect {addr!r} from {sys.argv[:2]!r}\\n")
        elif event == "socket.getaddrinfo":
            if args[0] not in ("localhost", "127.0.0.1", "::1", None):
                with open(_log, "a") as f: f.write(f"resolve {args[0]!r} from {sys.argv[:2]!r}\\n")
        elif event in ("subprocess.Popen", "os.system"):
            text = " ".join(map(str, args[1] if event == "subprocess.Popen" else args[:1]))
            if "pip" in text.split()[:3] or "pip install" in text:
                with open(_log, "a") as f: f.write(f"pip {text!r}\\n")
    sys.addaudithook(_hook)
''')


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("unshare") is None,
                                reason="needs util-linux unshare for a network namespace")


class Offline:
    """Runs commands with no network, every Python process audited; `run` fails the test on a network or pip
    attempt, whatever the exit code."""

    def __init__(self, root):
        site = root / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(AUDIT)
        self.log = root / "audit.log"
        self.log.touch()
        self.env = {**os.environ, "EDGEKIT_AUDIT_LOG": str(self.log), "EDGEKIT_CACHE": str(root / "cache"),
                    "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def run(self, args, cwd, timeout=900, ok=True):
        self.log.write_text("")
        # -r maps us to root inside a new user namespace, so this works without privileges too; -n: no network
        proc = subprocess.run(["unshare", "-rn", *args], cwd=cwd, capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        what = " ".join(map(str, args[2:4]))
        assert self.log.read_text() == "", f"{what} tried to reach the network or pip:\n" + self.log.read_text()
        if ok:
            assert proc.returncode == 0, what + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc


def edgekit(*args):
    return [sys.executable, "-m", "edgekit.cli", *map(str, args)]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    return Offline(tmp_path_factory.mktemp("offline"))


@pytest.fixture(scope="module")
def exported(offline, tmp_path_factory):
    work = tmp_path_factory.mktemp("offline-export")
    fx = OCR_MODELS["ppocr-cls"]
    offline.run(edgekit("export", fx.path, "--target", "all", "--input-shape", fx.input_shape, "--out", work / "out",
                        "--json", work / "r.json"), cwd=work)
    return work


def test_the_audit_sees_an_attempt(offline, tmp_path):
    """The check itself can fail: a lookup and a pip start from a child process are both logged."""
    probe = ("import socket, subprocess, sys\n"
             "try: socket.getaddrinfo('pypi.org', 443)\n"
             "except OSError: pass\n"
             "subprocess.run([sys.executable, '-m', 'pip', '--version'], capture_output=True)\n")
    with pytest.raises(AssertionError, match="tried to reach the network or pip"):
        offline.run([sys.executable, "-c", probe], cwd=tmp_path)
    logged = offline.log.read_text()
    assert "resolve 'pypi.org'" in logged and "pip " in logged


def test_export_all_formats_without_network(exported):
    results = json.loads((exported / "r.json").read_text())
    assert sorted(r["format"] for r in results if r["status"] == "ok") == ["mnn", "ncnn", "openvino", "tflite"]


def test_check_bench_and_run_without_network(offline, exported):
    arts = sorted(str(p) for p in (exported / "out").iterdir())
    assert len(arts) == 4
    offline.run([sys.executable, "-m", "edgekit.fixtures", "images", "text-line", "lines", "2"], cwd=exported)
    proc = offline.run(edgekit("check", *arts, "--data", "lines"), cwd=exported)
    assert proc.stdout.count("PASS") >= 4
    offline.run(edgekit("bench", *arts[:2], "--threads", "1", "--warmup", "1", "--iterations", "3",
                        "--min-seconds", "0", "--json", "bench.json"), cwd=exported)
    assert (exported / "bench.json").is_file()
    offline.run(edgekit("run", arts[0], "lines/text-line_0.png"), cwd=exported)


def test_import_and_pipeline_without_network(offline, tmp_path):
    from edgekit.fixtures import MEDIAPIPE_MODELS

    offline.run(edgekit("import", MEDIAPIPE_MODELS["blazeface-short"].path, "--out", tmp_path / "face.onnx"),
                cwd=tmp_path)
    assert (tmp_path / "face.onnx").stat().st_size > 100_000
    # the face app: its two MediaPipe models are imported and exported into the (empty) cache, offline too
    offline.run([sys.executable, os.path.join(ROOT, "tools", "make_sample_media.py"), "--out", "samples",
                 "--frames", "3"], cwd=tmp_path)
    offline.run(edgekit("pipeline", os.path.join(ROOT, "apps", "face", "graph.yaml"), "--source", "samples/face.avi",
                        "--sink", "out/face.avi", "--backend", "openvino", "--max-frames", "3"), cwd=tmp_path)
    assert (tmp_path / "out" / "face.avi").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGEKIT_TEST_OFFLINE_DEMO") != "1",
                    reason="the whole demo offline takes ~2.5 min; its parts (export all, check, bench, the face "
                           "pipeline, the sample media) are covered above; EDGEKIT_TEST_OFFLINE_DEMO=1 runs it")
def test_demo_without_network(offline, tmp_path):
    proc = offline.run(edgekit("demo"), cwd=tmp_path, timeout=1800)
    assert "recommendation:" in proc.stdout
    assert (tmp_path / "edgekit-demo" / "face_annotated.avi").is_file()
