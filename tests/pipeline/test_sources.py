"""Sources: image folders/patterns, video files, and live streams on 127.0.0.1 -- MJPEG over HTTP, and RTSP
(Motion-JPEG over RTP, tests/pipeline/rtsp_server.py) read through OpenCV's FFmpeg -- that are stopped and
restarted, or hang (the source reconnects with backoff)."""
from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.pipeline import Pipeline, PipelineError
from edgekit.pipeline.mjpeg import MjpegServer
from edgekit.pipeline.nodes.sources import ImageSource, StreamSource, VideoSource, source_from_text
from tests.pipeline import helpers as h
from tests.pipeline.rtsp_server import RtspServer


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


def _wait_for(sink, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(sink.items) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(sink.items) >= n


def test_stream_source_reconnects_after_the_server_restarts(no_new_threads):
    port = _free_port()
    cam = Camera(port)
    p = Pipeline(max_in_flight=2)
    src = p.add(StreamSource("source", url=f"http://127.0.0.1:{port}/stream.mjpg", timeout=1.0, backoff=0.05,
                             max_backoff=0.4, max_retries=0), outputs={"frame": "frames"})
    sink = p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.start()
    try:
        assert _wait_for(sink, 10, 10), "no frames from the stream"
        cam.close()  # the camera goes away
        time.sleep(1.0)
        before = len(sink.items)
        time.sleep(0.5)
        assert len(sink.items) == before  # nothing arrives while it is down, and nothing crashed
        assert not p.error
        cam = Camera(port)  # ... and comes back on the same address
        assert _wait_for(sink, before + 10, 15), "the source did not reconnect"
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
    with pytest.raises(PipelineError, match=f"source http://127.0.0.1:{port}/: connection refused; gave up after "
                                            "3 retries"):
        p.run()
    s = p.summary
    assert s.frames_in == 0 and s.stopped_by == "error in node 'source'"  # issue 12: a clear error, not an end
    assert [m.split(": ", 1)[1].split(" in ")[0] for m in p.source_log] == [
        f"connection refused, retry {i}/3" for i in (1, 2, 3)]


# ---- RTSP: the real StreamSource -> OpenCV's FFmpeg -> a real RTSP server (RTP/JPEG interleaved over TCP)

def _rtsp_frames(n: int = 4, size=(160, 128)) -> list[np.ndarray]:
    """`n` clearly different BGR frames (gradients and a number), so each received frame can be matched."""
    import cv2

    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(n):
        f = np.zeros((height, width, 3), np.uint8)
        f[..., 0] = (x * 255 // width + 64 * k) % 256
        f[..., 1] = y * 255 // height
        f[..., 2] = (90 * k) % 256
        cv2.putText(f, str(k), (width // 3, 2 * height // 3), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
        frames.append(f)
    return frames


def _matches(img: np.ndarray, frames: list[np.ndarray]) -> int:
    """The sent frame `img` is (JPEG loss only: close to it, far from the others)."""
    d = sorted((float(np.abs(img.astype(np.int16) - f).mean()), k) for k, f in enumerate(frames))
    assert d[0][0] < 3.0 and d[1][0] > 20.0, d
    return d[0][1]


def _setups(server: RtspServer) -> list[str]:
    return [headers.get("transport", "") for method, _, headers in server.requests if method == "SETUP"]


def test_rtsp_stream_through_the_pipeline(no_new_threads, monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)  # edgekit asks for TCP itself
    frames = _rtsp_frames()
    with RtspServer(frames, fps=50) as server:
        p = Pipeline(max_in_flight=2)
        src = p.add(source_from_text(server.url), outputs={"frame": "frames"})
        assert isinstance(src, StreamSource)
        sink = p.add(h.Collect("sink"), inputs={"in": "frames"})
        p.start()
        try:
            assert _wait_for(sink, 20, 10), "no frames from the RTSP stream"
        finally:
            p.stop("test done")
            s = p.close()
    assert p.error is None and s.stopped_by == "test done"
    assert not p.threads()
    images = [item[2] for item in sink.items]
    assert all(img.shape == (128, 160, 3) and img.dtype == np.uint8 for img in images)
    seen = [_matches(img, frames) for img in images]
    assert set(seen) == {0, 1, 2, 3}
    # RTP over the RTSP connection at once: no UDP SETUP first
    assert _setups(server) == ["RTP/AVP/TCP;unicast;interleaved=0-1"]
    assert [r[0] for r in server.requests][:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]


def test_rtsp_udp_refused_falls_back_to_tcp(no_new_threads, monkeypatch):
    """A user's OPENCV_FFMPEG_CAPTURE_OPTIONS is kept: empty, FFmpeg asks for UDP first; the server answers
    461 Unsupported Transport and FFmpeg sets up TCP instead."""
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "")
    frames = _rtsp_frames()
    with RtspServer(frames, fps=50) as server:
        src = StreamSource("source", url=server.url, timeout=2.0)
        src.open()
        try:
            _matches(src.read(), frames)
        finally:
            src.close()
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == ""
    setups = _setups(server)
    assert len(setups) == 2 and setups[0].startswith("RTP/AVP/UDP") and setups[1].startswith("RTP/AVP/TCP")


def test_rtsp_source_reconnects_after_the_server_restarts(no_new_threads):
    frames = _rtsp_frames()
    server = RtspServer(frames, fps=50).start()
    p = Pipeline(max_in_flight=2)
    src = p.add(StreamSource("source", url=server.url, timeout=1.0, backoff=0.05, max_backoff=0.4, max_retries=0),
                outputs={"frame": "frames"})
    sink = p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.start()
    try:
        assert _wait_for(sink, 10, 10), "no frames from the stream"
        server.stop()  # the camera goes away: its connections are closed
        time.sleep(1.0)
        before = len(sink.items)
        time.sleep(0.5)
        assert len(sink.items) == before  # nothing arrives while it is down, and nothing crashed
        assert not p.error and server.connections == 1
        server.start()  # ... and comes back on the same port
        assert _wait_for(sink, before + 10, 15), "the source did not reconnect"
        assert src.reconnects >= 1 and server.connections >= 2
        seqs = [i[0] for i in sink.items]
        assert all(a < b for a, b in zip(seqs, seqs[1:]))
    finally:
        p.stop("test done")
        s = p.close()
        server.stop()
    assert p.error is None and s.stopped_by == "test done"
    assert not p.threads()
    for item in sink.items[before:]:
        _matches(item[2], frames)


def test_rtsp_source_times_out_on_a_hung_camera_and_reconnects(no_new_threads):
    """The camera keeps the connection open but sends nothing: the read times out after `timeout` (not
    FFmpeg's 30 s), the source reconnects (opening times out too while it hangs) and goes on once it is back."""
    frames = _rtsp_frames()
    with RtspServer(frames, fps=50) as server:
        p = Pipeline(max_in_flight=2)
        src = p.add(StreamSource("source", url=server.url, timeout=1.0, backoff=0.05, max_backoff=0.2),
                    outputs={"frame": "frames"})
        sink = p.add(h.Collect("sink"), inputs={"in": "frames"})
        p.start()
        try:
            assert _wait_for(sink, 10, 10), "no frames from the stream"
            server.pause()
            time.sleep(0.5)  # what was buffered comes out, then nothing
            before = len(sink.items)
            deadline = time.monotonic() + 5
            while server.connections < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.connections >= 2, "the read did not time out"
            assert len(sink.items) == before and not p.error
            server.resume()
            assert _wait_for(sink, before + 10, 10), "the source did not reconnect"
            assert src.reconnects == 1  # the attempts while it hung gave no frame: they are not reconnections
        finally:
            p.stop("test done")
            s = p.close()
    assert p.error is None and s.stopped_by == "test done"
    for item in sink.items[before:]:
        _matches(item[2], frames)


def test_rtsp_source_gives_up_on_a_camera_that_never_sends(no_new_threads):
    """It answers RTSP but sends no frame: OpenCV calls such a stream opened (FFmpeg's probe timed out), but a
    connection only counts once it gives a frame, so the failed attempts add up to `max_retries`."""
    with RtspServer(_rtsp_frames(), fps=50) as server:
        server.pause()
        p = Pipeline()
        src = p.add(StreamSource("source", url=server.url, timeout=0.3, backoff=0.02, max_backoff=0.05,
                                 max_retries=2), outputs={"frame": "frames"})
        p.add(h.Collect("sink"), inputs={"in": "frames"})
        log = []
        src.log = log.append
        p.start()
        try:
            assert p.wait(10), "the source did not give up"
        finally:
            s = p.close()
    assert s.frames_in == 0 and s.stopped_by == "error in node 'source'" and src.reconnects == 0
    assert "gave up after 2 retries" in str(p.error) and len(log) == 2 and server.connections == 3
