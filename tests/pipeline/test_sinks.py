"""Sinks: a finalised video file, JSON lines, the MJPEG viewer a browser opens, and the window sink's clear
refusal on a headless machine."""
from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.pipeline import Pipeline
from edgekit.pipeline.nodes.sinks import HttpSink, JsonlSink, VideoSink, WindowSink, sink_from_text
from tests.pipeline import helpers as h


def test_sink_from_text():
    assert isinstance(sink_from_text("out.avi"), VideoSink)
    assert isinstance(sink_from_text("jsonl:out.jsonl"), JsonlSink)
    s = sink_from_text("http://0.0.0.0:8080")
    assert isinstance(s, HttpSink) and s.port == 8080
    assert isinstance(sink_from_text("window"), WindowSink)
    with pytest.raises(EdgekitError, match="give window, jsonl:FILE"):
        sink_from_text("out.h264")


def test_window_needs_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(EdgekitError, match="no display.*http://0.0.0.0:8080"):
        WindowSink("w").open()


@pytest.mark.parametrize("ext", [".avi", ".mp4", ".webm"])
def test_video_sink_writes_a_complete_file(tmp_path, ext, no_new_threads):
    import cv2

    out = tmp_path / f"out{ext}"
    p = Pipeline()
    p.add(h.Frames("src", count=12, size=(64, 48)), outputs={"frame": "frames"})
    p.add(VideoSink("sink", path=str(out)), inputs={"in": "frames"})
    p.run()
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12
    assert not list(tmp_path.glob(".*partial*"))


def test_http_viewer_serves_page_stream_frame_and_stats(no_new_threads):
    import cv2

    p = Pipeline()
    p.add(h.Frames("src", count=None, fps=30, size=(80, 60)), outputs={"frame": "frames"})
    sink = p.add(HttpSink("sink", host="127.0.0.1", port=0), inputs={"in": "frames"})
    p.start()
    try:
        base = f"http://127.0.0.1:{sink.port}"
        page = urllib.request.urlopen(base + "/", timeout=5).read().decode()
        assert '<img src="/stream.mjpg"' in page and "stats.json" in page
        frame = urllib.request.urlopen(base + "/frame.jpg", timeout=5).read()
        img = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (60, 80, 3)
        resp = urllib.request.urlopen(base + "/stream.mjpg", timeout=5)
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        data = b""
        while data.count(b"\xff\xd9") < 3:
            data += resp.read1(65536)
        resp.close()
        time.sleep(1.1)
        stats = json.loads(urllib.request.urlopen(base + "/stats.json", timeout=5).read())
        assert stats["frames_in"] > 0 and {n["node"] for n in stats["nodes"]} == {"src", "sink"}
    finally:
        p.stop("test done")
        p.close()
    assert p.error is None and not p.threads()


def test_http_viewer_port_in_use_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(EdgekitError, match=f"cannot serve on 127.0.0.1:{port}"):
            HttpSink("sink", host="127.0.0.1", port=port).open()


def test_jsonl_sink_writes_arrays_numpy_scalars_and_odd_keys(tmp_path):
    from edgekit.pipeline.packet import Packet

    out = tmp_path / "r.jsonl"
    sink = JsonlSink("log", path=str(out))
    sink.open()
    sink.process({"in": {"faces": [{"box": [1.5, 2.0, 3.0, 4.0], "score": np.float32(0.5)}],
                         "points": np.arange(4).reshape(2, 2), "frame": np.zeros((100, 100, 3), np.uint8)}},
                 Packet(0, 1.25, None))
    sink.process({"in": {(1, 2): "tuple key"}}, Packet(1, 1.5, None))
    sink.process({"in": 7}, Packet(2, 1.75, None))
    sink.close()
    first, second, third = [json.loads(line) for line in out.read_text().splitlines()]
    assert first == {"seq": 0, "ts": 1.25, "faces": [{"box": [1.5, 2.0, 3.0, 4.0], "score": 0.5}],
                     "points": [[0, 1], [2, 3]], "frame": {"array": [100, 100, 3], "dtype": "uint8"}}
    assert second == {"seq": 1, "ts": 1.5, "(1, 2)": "tuple key"}
    assert third == {"seq": 2, "ts": 1.75, "value": 7}
