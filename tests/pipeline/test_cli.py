"""`edgekit pipeline` from the command line: Ctrl-C (SIGINT) shuts down cleanly and finalises the video,
a failing node is named with exit code 1, and the node list."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

GRAPH = """
name: sigint
nodes:
  - {{name: source, type: source, uri: "{video}", output: frames}}
  - {{name: draw, type: annotate, show_fps: true, inputs: {{frame: frames}}, output: drawn}}
  - {{name: sink, type: sink, uri: "{out}", input: drawn}}
"""


def edgekit(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "edgekit.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigint_stops_cleanly_and_finalises_the_video(tmp_path, samples):
    import cv2

    out = tmp_path / "out.mp4"  # mp4 is unreadable unless the writer is finalised
    (tmp_path / "g.yaml").write_text(GRAPH.format(video=samples["face"], out=out))
    proc = edgekit("pipeline", str(tmp_path / "g.yaml"), "--loop", "0", "--realtime")
    partial = tmp_path / ".out.partial.mp4"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 20000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert partial.exists(), proc.stderr.read() if proc.poll() is not None else "no output yet"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "stopped by interrupted" in stdout
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n > 5 and not partial.exists()


def test_failing_node_exit_code_and_message(tmp_path, samples):
    (tmp_path / "bad.py").write_text(textwrap.dedent('''
        from edgekit.pipeline import Node, register

        @register("explode")
        class Explode(Node):
            def process(self, inputs, packet):
                if packet.seq == 3:
                    raise RuntimeError("sensor on fire")
                return inputs["in"]
    '''))
    (tmp_path / "g.yaml").write_text(textwrap.dedent(f'''
        imports: [bad.py]
        nodes:
          - {{name: source, type: source, uri: "{samples['face']}", output: frames}}
          - {{name: boom, type: explode, input: frames, output: x}}
          - {{name: sink, type: sink, uri: "jsonl:{tmp_path / 'x.jsonl'}", input: x}}
    '''))
    proc = edgekit("pipeline", str(tmp_path / "g.yaml"))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "node 'boom' (explode) failed: RuntimeError: sensor on fire" in stderr


def test_list_nodes_and_missing_graph():
    proc = edgekit("pipeline", "--list-nodes")
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    for kind in ("inference", "preprocess", "face_detections", "db_postprocess", "http_sink", "stream_source"):
        assert kind in stdout
    proc = edgekit("pipeline", "nosuch.yaml")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "nosuch.yaml: no such graph file" in stderr
