"""Sources: image folders/patterns, video files, and a live MJPEG-over-HTTP stream on 127.0.0.1 that is stopped
and restarted (the source reconnects with backoff)."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.pipeline import Pipeline
from edgekit.pipeline.mjpeg import MjpegServer
from edgekit.pipeline.nodes.sources import ImageSource, StreamSource, VideoSource, source_from_text
from tests.pipeline import helpers as h


def test_source_from_text_picks_the_right_source(tmp_path, samples):
    assert isinstance(source_from_text(str(samples["face"])), VideoSource)
    assert isinstance(source_from_text(str(tmp_path)), ImageSource)
    assert isinstance(source_from_text(f"{tmp_path}/*.png"), ImageSource)
    assert isinstance(source_from_text("rtsp://127.0.0.1:8554/cam"), StreamSource)
    assert type(source_from_text("0")).__name__ == "CameraSource"
    with pytest.raises(EdgekitError, match="no such file"):
        source_from_text(str(tmp_path / "missing.avi"))


def test_no_camera_is_a_clear_error():
    from edgekit.pipeline.nodes.sources import CameraSource

    with pytest.raises(EdgekitError, match="camera 7: cannot open"):
        CameraSource("cam", index=7).open()


def test_video_file_realtime_is_paced(samples):
    src = VideoSource("v", path=str(samples["face"]), realtime=True)
    src.open()
    start = time.monotonic()
    for _ in range(10):
        src.wait_turn()  # the engine calls this before read(): pacing is not read time
        assert src.read() is not None
    src.close()
    assert time.monotonic() - start >= 9 / 30 - 0.02  # 30 fps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    """An IP camera stand-in: an MJPEG server on 127.0.0.1 publishing numbered frames at ~50 fps."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.server = MjpegServer("127.0.0.1", port)
        self.n = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            frame = np.zeros((48, 64, 3), np.uint8)
            frame[:] = (self.n * 7) % 256
            self.server.publish(frame)
            self.n += 1
            time.sleep(0.02)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.server.close()


def test_stream_source_reconnects_after_the_server_restarts(no_new_threads):
    port = _free_port()
    cam = Camera(port)
    p = Pipeline(max_in_flight=2)
    src = p.add(StreamSource("source", url=f"http://127.0.0.1:{port}/stream.mjpg", timeout=1.0, backoff=0.05,
                             max_backoff=0.4), outputs={"frame": "frames"})
    sink = p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.start()
    try:
        deadline = time.monotonic() + 10
        while len(sink.items) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.items) >= 10, "no frames from the stream"
        cam.close()  # the camera goes away
        time.sleep(1.0)
        before = len(sink.items)
        time.sleep(0.5)
        assert len(sink.items) == before  # nothing arrives while it is down, and nothing crashed
        assert not p.error
        cam = Camera(port)  # ... and comes back on the same address
        deadline = time.monotonic() + 15
        while len(sink.items) < before + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.items) >= before + 10, "the source did not reconnect"
        assert src.reconnects >= 1
        seqs = [i[0] for i in sink.items]
        assert all(a < b for a, b in zip(seqs, seqs[1:]))
    finally:
        p.stop("test done")
        s = p.close()
        cam.close()
    assert p.error is None and s.stopped_by == "test done"
    assert not p.threads()


def test_stream_source_gives_up_after_max_retries(no_new_threads):
    port = _free_port()  # nothing listens here
    p = Pipeline()
    p.add(StreamSource("source", url=f"http://127.0.0.1:{port}/", timeout=0.5, backoff=0.02, max_backoff=0.05,
                       max_retries=3), outputs={"frame": "frames"})
    p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.source_log = []
    p.nodes["source"].log = p.source_log.append
    s = p.run()
    assert s.frames_in == 0 and s.stopped_by == "end of stream"
    assert "unreachable after 3 attempts" in p.source_log[0]
