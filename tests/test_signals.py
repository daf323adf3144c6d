"""Signals and pipes: SIGTERM/SIGHUP mid-export unwind like Ctrl-C (exit 128+signum, no hidden `.tmp` in --out,
no scratch in the temp dir, no converter left running); after a SIGKILL the converter dies with edgekit and the
next run removes what the killed one left; `edgekit ... | head` ends quietly."""
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from edgekit import fsutil
from tests.models import conv_net, save


def _start_export(tmp_path, target="tflite"):
    """`edgekit export tiny.onnx --target tflite` with its own temp dir; returns (process, its onnx2tf
    descendants) once onnx2tf is converting."""
    model = tmp_path / "tiny.onnx"
    save(conv_net(batch=1), model)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    # SIGINT as from a terminal: a background job (CI) inherits it ignored, and Python then leaves it ignored
    proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "export", str(model), "--target", target,
                             "--out", str(tmp_path / "out")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        kids = [k for k in me.children(recursive=True) if "onnx2tf" in " ".join(_cmdline(k))]
        if kids:
            time.sleep(1.0)  # well into the conversion
            return proc, me.children(recursive=True)
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"onnx2tf never started: {proc.communicate()}")


def _cmdline(p):
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _gone(procs, timeout=15):
    """True when none of `procs` runs any more (exited; a zombie awaiting a reaper counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.2)
    return False


def _leftovers(tmp_path):
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else [], \
        sorted(p.name for p in (tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_mid_conversion_unwinds_like_ctrl_c(tmp_path, signum):
    proc, kids = _start_export(tmp_path)
    assert kids
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err[-3000:]
    said = "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"
    assert f"edgekit export: {said}" in err
    assert "Traceback" not in err
    assert _gone(kids), [(_cmdline(k), k.status()) for k in kids if k.is_running()]
    out, tmp = _leftovers(tmp_path)
    assert out == [] and tmp == [], (out, tmp)  # no .tiny_tflite.*.tmp, no edgekit-<pid>-* scratch


def test_after_sigkill_the_converter_dies_too_and_the_next_run_cleans_up(tmp_path):
    proc, kids = _start_export(tmp_path)
    tag = fsutil.owner_tag(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(kids), [(_cmdline(k), k.status()) for k in kids if k.is_running()]  # no orphan converting
    out, tmp = _leftovers(tmp_path)
    # the ladder converts in the run's temp folder and moves an artifact into --out only once it verified, so a
    # kill mid-conversion leaves at most a marked `.tmp` there, and its scratch in the temp folder
    assert all(n.startswith(f".tiny_tflite.{tag}.") for n in out) and tmp == [f for f in tmp if tag in f] != []
    # the next run, even of another format, removes both
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "export", str(tmp_path / "tiny.onnx"), "--target",
                           "onnx", "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _leftovers(tmp_path) == (["tiny_onnx"], [])


def test_a_closed_pipe_ends_quietly(tmp_path):
    save(conv_net(batch=1), tmp_path / "tiny.onnx")
    for args in (["inspect", str(tmp_path / "tiny.onnx")], ["targets"]):
        proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader has gone, as `| head` does after its lines
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
        assert err == "", err


def test_python_callers_get_their_signal_handlers_back():
    from edgekit.cli import main

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert main(["targets"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def _group_alive(pgid):
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (psutil.Error, ProcessLookupError):
            pass
    return alive


def test_a_tool_past_its_timeout_goes_with_everything_it_started(tmp_path):
    from edgekit.subproc import run_tool

    with pytest.raises(subprocess.TimeoutExpired) as e:
        run_tool(["bash", "-c", "echo $$; sleep 100 & sleep 100"], cwd=tmp_path, timeout=2)
    pgid = int(e.value.output.split()[0])  # the tool leads its own group
    assert pgid != os.getpgid(0)
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_alive(pgid) == []


def test_a_missing_tool_is_file_not_found_as_before(tmp_path):
    from edgekit.subproc import run_tool

    with pytest.raises(FileNotFoundError):
        run_tool([str(tmp_path / "no-such-converter")], cwd=tmp_path)
    assert run_tool(["sh", "-c", "echo hi; exit 3"], cwd=tmp_path).returncode == 3


def test_sigterm_stops_a_pipeline_cleanly_with_143(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, os.path.join(root, "tools", "make_sample_media.py"), "--out", "samples",
                    "--frames", "600"], cwd=tmp_path, check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "pipeline", os.path.join(root, "apps", "face",
                             "graph.yaml"), "--source", "samples/face.avi", "--sink", "out/face.avi",
                             "--backend", "onnx", "--stats"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = ""
    # --stats prints "N in, M processed" every second once the graph runs: stop it only when frames flow (a fixed
    # sleep after "graph 'face'" raced the models' loading on a busy machine: "stopped while starting")
    while not re.search(r" [1-9]\d* processed", first) and proc.poll() is None:
        first += proc.stderr.readline()
    assert proc.poll() is None, "the pipeline ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    err = first + err
    assert proc.returncode == 143, err[-3000:]
    # the pipeline's own stop-signal handling (edgekit/pipeline/signals.py) drains the graph and says so
    assert "pipeline stopped by SIGTERM" in out and "Traceback" not in err, (out + err)[-2000:]
