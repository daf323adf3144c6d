"""Issue 12 on the pipeline side ("never a traceback, never a lost output"): every hostile input of the report
is one clear line with exit code 2 (1 for a source that cannot be reached) and leaves nothing behind; SIGTERM
and SIGHUP finalise the outputs as Ctrl-C does; outputs are not overwritten without --force and are listed;
--stats redraws in place on a terminal. The cases are listed in docs/reliability.md ("Pipelines")."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekit.cli import main as cli

GRAPH = """
name: t
nodes:
  - {{name: source, type: source, uri: "{video}", output: frames}}
  - {{name: draw, type: annotate, inputs: {{frame: frames}}, output: drawn}}
  - {{name: sink, type: sink, uri: "{out}", input: drawn}}
  - {{name: log, type: jsonl_sink, path: "{jsonl}", input: drawn}}
"""


def _graph(tmp_path: Path, video, extra: str = "", **fmt) -> Path:
    fmt = {"video": video, "out": tmp_path / "out.avi", "jsonl": tmp_path / "out.jsonl", **fmt}
    g = tmp_path / "g.yaml"
    g.write_text(GRAPH.format(**fmt) + textwrap.dedent(extra))
    return g


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(capsys, args) -> tuple[int, str, str]:
    code = cli(["pipeline", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _edgekit(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgekit.cli", "pipeline", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# ---- bad input: one line, exit 2, nothing written, before anything runs

def _bad_module(tmp_path: Path, body: str) -> str:
    (tmp_path / "bad_nodes.py").write_text(body)
    return "imports: [bad_nodes.py]\n"


BAD_INPUTS = {
    # case: (graph text to append or replace, extra args, message)
    "unknown graph key": ("backnd: mnn\n", [], "g.yaml: unknown key 'backnd'; did you mean 'backend'?"),
    "unknown flow_limiter key": ("flow_limiter: {max_in_fligth: 2}\n", [],
                                 "flow_limiter: unknown key 'max_in_fligth'; did you mean 'max_in_flight'?"),
    "max_in_flight not a number": ("flow_limiter: {max_in_flight: lots}\n", [],
                                   "flow_limiter.max_in_flight must be an integer >= 1, not 'lots'"),
    "unknown node option": ("", ["--set", "draw.thicknes=3"],
                            "node 'draw' (annotate): unknown option 'thicknes'; did you mean 'thickness'?"),
    "node option of the wrong type": ("", ["--set", "draw.thickness=lots"],
                                      "node 'draw' (annotate): option 'thickness' must be an integer, not 'lots'"),
    "unknown source option": ("", ["--set", "source.max_retires=3"],
                              "node 'source' (source): unknown option 'max_retires'; did you mean 'max_retries'?"),
    "log.path a folder": ("", ["--set", "log.path={tmp}"], "node 'log': {tmp} is a folder; give a file name in it"),
    "log.path empty": ("", ["--set", "log.path="], "node 'log' (jsonl_sink): option 'path' needs a value"),
    "--sink jsonl: a folder": ("", ["--sink", "jsonl:{tmp}"], "node 'sink': {tmp} is a folder"),
    "--max-frames -1": ("", ["--max-frames", "-1"], "--max-frames -1: give a number of frames >= 1"),
    "--max-in-flight 0": ("", ["--max-in-flight", "0"], "--max-in-flight must be an integer >= 1, not 0"),
    "--sink http port 70000": ("", ["--sink", "http://127.0.0.1:70000"],
                               "--sink http://127.0.0.1:70000: port 70000 is out of range (0-65535)"),
    "--sink http port 99999": ("", ["--sink", "http://:99999"], "port 99999 is out of range (0-65535)"),
    "--summary-json a folder": ("", ["--summary-json", "{tmp}"], "--summary-json: {tmp} is a folder"),
    "--trace a folder": ("", ["--trace", "{tmp}"], "--trace: {tmp} is a folder"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, samples, capsys, case):
    extra, args, message = BAD_INPUTS[case]
    folder = tmp_path / "folder"
    folder.mkdir()
    g = _graph(tmp_path, samples["face"], extra)
    before = _files(tmp_path)
    code, out, err = _run(capsys, [g, *[a.format(tmp=folder) for a in args]])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("edgekit pipeline: error: "), err
    assert message.format(tmp=folder) in err
    assert "Traceback" not in out + err
    assert _files(tmp_path) == before


def test_a_valid_option_still_runs(tmp_path, samples, capsys):
    g = _graph(tmp_path, samples["face"])
    code, out, err = _run(capsys, [g, "--set", "draw.color=[1,2,3]", "--max-frames", "2"])
    assert code == 0, err
    assert f"wrote {tmp_path / 'out.avi'}" in out and f"wrote {tmp_path / 'out.jsonl'}" in out


@pytest.mark.parametrize("graph, message", [
    ("name: t\nnodes:\n  - source\n", "nodes[0] is 'source'; a node is a mapping"),
    ("name: t\nnodes: [{name: a, type: test_nope}]\n", "unknown node type 'test_nope'"),
    ("name: t\nnodes:\n  - {name: s, type: source, uri: x.avi, output: {stream: f, sise: 2}}\n",
     "unknown key 'sise'; did you mean 'size'?"),
])
def test_malformed_graph_is_one_line(tmp_path, capsys, graph, message):
    (tmp_path / "g.yaml").write_text(graph)
    code, out, err = _run(capsys, [tmp_path / "g.yaml"])
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("body, message", [
    ("import no_such_module_12\n", "imports: cannot import 'no_such_module_12'"),  # via a dotted name below
    ("x = 1\nraise ValueError('bad config in the module')\n",
     "bad_nodes.py: the module failed: ValueError: bad config in the module (line 2)"),
    ("import no_such_module_12\n", "bad_nodes.py: the module failed: ModuleNotFoundError: No module named "
                                   "'no_such_module_12' (line 1)"),
    ("def broken(:\n", "bad_nodes.py: the module failed: SyntaxError: invalid syntax (line 1)"),
])
def test_failing_imports_module_is_one_line_naming_it(tmp_path, samples, capsys, body, message):
    if message.startswith("imports: cannot import"):
        extra = "imports: [no_such_module_12]\n"
    else:
        extra = _bad_module(tmp_path, body)
    g = _graph(tmp_path, samples["face"], extra)
    before = _files(tmp_path)
    code, out, err = _run(capsys, [g])
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert _files(tmp_path) == before


# ---- outputs: no silent overwrite, every path listed

def test_existing_outputs_need_force_and_written_paths_are_listed(tmp_path, samples, capsys):
    g = _graph(tmp_path, samples["face"])
    summary = tmp_path / "sub" / "summary.json"
    code, out, err = _run(capsys, [g, "--max-frames", "3", "--summary-json", summary])
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith("wrote ")] == [
        f"wrote {tmp_path / 'out.avi'}", f"wrote {tmp_path / 'out.jsonl'}", f"wrote {summary}"]
    first = (tmp_path / "out.avi").stat().st_mtime_ns
    code, out, err = _run(capsys, [g, "--max-frames", "3"])
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / 'out.avi'} exists (node 'sink'); add --force to overwrite it" in err
    assert (tmp_path / "out.avi").stat().st_mtime_ns == first
    code, out, err = _run(capsys, [g, "--max-frames", "3", "--force"])
    assert code == 0 and f"wrote {tmp_path / 'out.avi'}" in out, err
    assert not list(tmp_path.glob(".*partial*"))


def test_two_sinks_on_one_file_are_refused(tmp_path, samples, capsys):
    g = _graph(tmp_path, samples["face"], jsonl=tmp_path / "same.jsonl")
    code, out, err = _run(capsys, [g, "--sink", f"jsonl:{tmp_path / 'same.jsonl'}"])
    assert code == 2 and "same.jsonl: written by both node 'sink' and node 'log'" in err, err


# ---- signals: SIGTERM and SIGHUP finalise as Ctrl-C does, exit 128 + signum, within 2 s

@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signal_finalises_the_video_and_prints_the_summary(tmp_path, samples, signum, code):
    import cv2

    out = tmp_path / "out.avi"
    g = _graph(tmp_path, samples["face"])
    proc = _edgekit(g, "--loop", "0", "--realtime")
    partial = tmp_path / ".out.partial.avi"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 20000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert partial.exists(), proc.stderr.read() if proc.poll() is not None else "no output yet"
    t0 = time.monotonic()
    proc.send_signal(signum)
    try:
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    took = time.monotonic() - t0
    assert proc.returncode == code, stderr
    assert took < 2.0, f"took {took:.1f} s to stop"
    assert f"pipeline stopped by {signal.Signals(signum).name}" in stdout
    assert f"wrote {out}" in stdout and "Traceback" not in stderr
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n > 5
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


# ---- sources: a closed port retries a bounded number of times, logged, then a clear error

def test_closed_port_retries_with_a_log_line_each_then_a_clear_error(tmp_path, samples):
    port = _free_port()  # nothing listens here
    g = _graph(tmp_path, samples["face"])
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    t0 = time.monotonic()
    proc = _edgekit(g, "--source", url, "--set", "source.max_retries=3", "--set", "source.backoff=0.05",
                    "--set", "source.timeout=0.5")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    retries = [line for line in stderr.splitlines() if ", retry " in line]
    assert retries == [f"edgekit pipeline: source {url}: connection refused, retry {i}/3 in {d} s"
                       for i, d in ((1, "0.1"), (2, "0.1"), (3, "0.2"))], stderr
    assert (f"edgekit pipeline: error: node 'source' (stream_source) failed: source {url}: connection refused; "
            "gave up after 3 retries") in stderr
    assert "Traceback" not in stderr and time.monotonic() - t0 < 30
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_source_node_options_are_honoured_and_live_sources_give_up_by_default(tmp_path, samples, capsys):
    from edgekit.pipeline import Overrides, build
    from edgekit.pipeline.nodes.sources import StreamSource

    assert StreamSource("s", url="rtsp://127.0.0.1:1/x").max_retries == 5  # finite by default
    port = _free_port()
    g = tmp_path / "g.yaml"
    g.write_text(textwrap.dedent(f"""
        nodes:
          - {{name: source, type: source, uri: "rtsp://127.0.0.1:{port}/cam", max_retries: 2, timeout: 0.5,
              backoff: 0.05, output: frames}}
          - {{name: sink, type: sink, uri: "jsonl:{tmp_path / 'r.jsonl'}", input: frames}}
    """))
    p = build(g, log=lambda m: None)
    src = p.nodes["source"]
    assert (src.max_retries, src.timeout, src.backoff) == (2, 0.5, 0.05)
    # --source replaces the uri; the node's options and --set still apply
    p = build(g, Overrides(source=f"http://127.0.0.1:{port}/", options={"source.max_retries": 7}), log=lambda m: None)
    src = p.nodes["source"]
    assert isinstance(src, StreamSource) and src.url.startswith("http") and (src.max_retries, src.timeout) == (7, 0.5)
    t0 = time.monotonic()
    code, out, err = _run(capsys, [g])
    assert code == 1 and "gave up after 2 retries" in err and time.monotonic() - t0 < 20, err
    assert err.count(", retry ") == 2


# ---- live --stats: in place on a terminal, plain lines otherwise

def test_stats_plain_lines_when_not_a_terminal(tmp_path, samples):
    g = _graph(tmp_path, samples["face"])
    proc = _edgekit(g, "--realtime", "--loop", "0", "--max-frames", "75", "--stats")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "\x1b[" not in stderr and stderr.count("] ") >= 1 and stderr.count("node ") >= 1


def test_stats_redrawn_in_place_on_a_terminal(tmp_path, samples):
    import pty
    import select

    g = _graph(tmp_path, samples["face"])
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "pipeline", str(g), "--realtime",
                             "--loop", "0", "--max-frames", "100", "--stats"], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.wait(30)
    assert proc.returncode == 0
    text = data.decode(errors="replace")
    tables = text.count("frames/s\r\n")
    lines = 1 + 1 + 4  # the run's line, the header, 4 nodes
    assert tables >= 2 and text.count(f"\x1b[{lines}F\x1b[J") == tables - 1, text[-2000:]


# ---- the MJPEG viewer: loopback by default, a token beyond, bounded clients, quiet drops

def test_viewer_defaults_to_loopback_and_logs_the_real_address():
    from edgekit.pipeline.nodes.sinks import HttpSink, sink_from_text

    s = sink_from_text("http://:8080")
    assert s.host == "127.0.0.1" and s.token is None
    assert HttpSink("v").host == "127.0.0.1"
    assert s.describe() == "viewer: http://127.0.0.1:8080/ (listening on 127.0.0.1:8080, this machine only)"
    every = sink_from_text("http://0.0.0.0:8080")
    assert every.token and len(every.token) >= 16
    assert every.describe() == (f"viewer: http://THIS-MACHINE:8080/?token={every.token} (listening on 0.0.0.0:8080, "
                                "every interface; the token is required)")
    assert sink_from_text("http://0.0.0.0:8080/?token=secret").token == "secret"


def _get(port: int, path: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_viewer_token_is_required_when_set(no_new_threads):
    from edgekit.pipeline.mjpeg import MjpegServer

    server = MjpegServer("127.0.0.1", 0, token="s3cret", title="t")
    try:
        assert _get(server.port, "/")[0] == 403
        assert _get(server.port, "/stats.json?token=wrong")[0] == 403
        code, page = _get(server.port, "/?token=s3cret")
        assert code == 200 and b'src="/stream.mjpg?token=s3cret"' in page and b"/stats.json?token=s3cret" in page
        assert _get(server.port, "/stats.json?token=s3cret") == (200, b"{}")
    finally:
        server.close()


def test_viewer_bounds_clients_and_drops_stalled_and_closed_ones_quietly(capfd, no_new_threads):
    import threading

    from edgekit.pipeline.mjpeg import MjpegServer

    server = MjpegServer("127.0.0.1", 0, max_clients=4, timeout=1.0)
    base = threading.active_count()
    try:
        for _ in range(300):  # connect and close at once (what a port scanner or a flaky browser does)
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            assert threading.active_count() <= base + 4
        stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=2) for _ in range(4)]
        deadline = time.monotonic() + 0.8
        while server.clients < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.clients == 4 and threading.active_count() <= base + 4
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as extra:
            extra.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert extra.recv(100).startswith(b"HTTP/1.0 503")
        assert server.refused >= 1
        time.sleep(1.5)  # the stalled clients time out and are dropped
        assert _get(server.port, "/stats.json")[0] == 200
        for s in stalled:
            s.close()
        server.publish_jpeg(b"\xff\xd8jpeg\xff\xd9")
        reader = socket.create_connection(("127.0.0.1", server.port), timeout=2)  # a stream it stops reading
        reader.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        reader.recv(10)
        t0 = time.monotonic()
    finally:
        server.close()
    assert time.monotonic() - t0 < 2.0
    reader.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-2000:]


def test_viewer_through_the_cli_logs_its_address_and_stops_on_sigint(tmp_path, samples):
    g = _graph(tmp_path, samples["face"])
    proc = _edgekit(g, "--loop", "0", "--realtime", "--sink", "http://:0")
    line, deadline = "", time.monotonic() + 60
    while "viewer:" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    try:
        assert "(listening on 127.0.0.1:" in line and "this machine only" in line, line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert _get(port, "/frame.jpg")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130 and "pipeline stopped by interrupted" in stdout and "Traceback" not in stderr


def test_stop_signal_while_the_graph_starts(tmp_path, samples):
    (tmp_path / "slow.py").write_text(textwrap.dedent('''
        import time
        from edgekit.pipeline import Node, register

        @register("test_slow_open")
        class SlowOpen(Node):  # a model that takes long to load
            def open(self):
                time.sleep(60)

            def process(self, inputs, packet):
                return inputs["in"]
    '''))
    g = _graph(tmp_path, samples["face"], "imports: [slow.py]\n")
    g.write_text(g.read_text().replace("type: annotate, inputs: {frame: frames}",
                                       "type: test_slow_open, input: frames"))
    proc = _edgekit(g)
    line, deadline = "", time.monotonic() + 60
    while "graph 't'" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "stopped by SIGTERM while starting" in stderr, stderr
    assert time.monotonic() - t0 < 2.0 and "Traceback" not in stderr
    assert not (tmp_path / "out.avi").exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]
