"""No network: an export of all four formats succeeds with outbound network blocked, and nothing edgekit
runs (converters included, in child processes too) tries to reach the internet or pip-install."""
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


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare for a network namespace")
def test_export_all_formats_without_network(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(AUDIT)
    log = tmp_path / "audit.log"
    log.touch()
    fx = OCR_MODELS["ppocr-cls"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "EDGEKIT_AUDIT_LOG": str(log)}
    cmd = [sys.executable, "-m", "edgekit.cli", "export", str(fx.path), "--target", "all",
           "--input-shape", fx.input_shape, "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")]
    # -r maps us to root inside a new user namespace, so this works without privileges too; -n: no network
    proc = subprocess.run(["unshare", "-rn", *cmd], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "r.json").read_text())
    assert sorted(r["format"] for r in results if r["status"] == "ok") == ["mnn", "ncnn", "openvino", "tflite"]
    assert log.read_text() == "", "something tried to reach the network or pip:\n" + log.read_text()
