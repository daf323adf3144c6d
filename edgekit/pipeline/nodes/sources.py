"""Sources: a camera index, a video file, an image folder or pattern, an RTSP/HTTP stream (reconnecting with
backoff). They emit BGR uint8 frames; `open_source(text)` picks the right one from a --source string."""
from __future__ import annotations

import glob
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from ...errors import EdgekitError
from ...preprocess import IMAGE_SUFFIXES, read_image
from ..node import Retry, SourceNode, make, register


class _Pacer:
    """Keeps a file source at its frame rate (`realtime: true`), like a camera would deliver it."""

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self.next = None

    def wait(self, stop: threading.Event) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self.next is None:
            self.next = now
        if self.next > now:
            stop.wait(self.next - now)
        self.next = max(self.next + self.period, time.monotonic() - self.period)


@register("video_source")
class VideoSource(SourceNode):
    """A video file (anything OpenCV's FFmpeg reads). `loop: N` plays it N times (0: forever); `realtime: true`
    paces it at its frame rate (or `fps:`) and makes it a live source whose excess frames the limiter drops."""

    def __init__(self, name: str, path: str, loop: int = 1, realtime: bool = False, fps: float | None = None,
                 **options):
        super().__init__(name, **options)
        self.path, self.loop, self.realtime = str(path), int(loop), bool(realtime)
        self.fps = fps
        self.live = self.realtime
        self._cap = None
        self._plays = 0
        self._stop = threading.Event()

    def open(self) -> None:
        import cv2

        if not Path(self.path).is_file():
            raise EdgekitError(f"{self.path}: no such video file")
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise EdgekitError(f"{self.path}: OpenCV cannot open this video")
        self.fps = self.fps or (self._cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._pacer = _Pacer(self.fps if self.realtime else None)

    def read(self):
        import cv2

        ok, frame = self._cap.read()
        if not ok:
            self._plays += 1
            if self.loop == 0 or self._plays < self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._cap.read()
            if not ok:
                return None
        return frame

    def wait_turn(self) -> None:
        self._pacer.wait(self._stop)

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


@register("image_source")
class ImageSource(SourceNode):
    """Every image in a folder, or matching a glob pattern (`frames/*.png`), in name order."""

    def __init__(self, name: str, path: str, loop: int = 1, fps: float | None = None, realtime: bool = False,
                 **options):
        super().__init__(name, **options)
        self.path, self.loop, self.fps, self.realtime = str(path), int(loop), fps or 30.0, bool(realtime)
        self.live = self.realtime
        self._files: list[str] = []
        self._i = 0
        self._stop = threading.Event()

    def open(self) -> None:
        p = Path(self.path)
        if p.is_dir():
            files = [str(f) for f in sorted(p.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = sorted(f for f in glob.glob(self.path) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgekitError(f"{self.path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._files = files
        self._pacer = _Pacer(self.fps if self.realtime else None)

    def read(self):
        if self._i >= len(self._files) * (self.loop if self.loop else 10**12):
            return None
        f = self._files[self._i % len(self._files)]
        self._i += 1
        return read_image(f)

    def wait_turn(self) -> None:
        self._pacer.wait(self._stop)

    def request_stop(self) -> None:
        self._stop.set()


@register("camera_source")
class CameraSource(SourceNode):
    """A local camera by index (V4L2 on Linux)."""

    live = True

    def __init__(self, name: str, index: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, **options):
        super().__init__(name, **options)
        self.index, self.width, self.height, self.fps = int(index), width, height, fps
        self._cap = None

    def open(self) -> None:
        import cv2

        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            raise EdgekitError(f"camera {self.index}: cannot open it (no /dev/video{self.index} on this machine?)")
        if self.width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            self._cap.set(cv2.CAP_PROP_FPS, self.fps)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or self.fps or 30.0

    def read(self):
        ok, frame = self._cap.read()
        if not ok:
            raise EdgekitError(f"camera {self.index}: read failed")
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class MjpegReader:
    """Reads an MJPEG-over-HTTP stream (multipart/x-mixed-replace of JPEGs) with socket timeouts."""

    def __init__(self, url: str, timeout: float):
        import urllib.request

        self.resp = urllib.request.urlopen(url, timeout=timeout)
        ctype = self.resp.headers.get("Content-Type", "")
        if "multipart" not in ctype:
            self.resp.close()
            raise ValueError(f"not a multipart MJPEG stream (Content-Type: {ctype or 'none'})")
        self.buf = b""

    def read(self) -> np.ndarray:
        import cv2

        while True:
            start = self.buf.find(b"\xff\xd8")
            end = self.buf.find(b"\xff\xd9", start + 2) if start >= 0 else -1
            if start >= 0 and end >= 0:
                jpg, self.buf = self.buf[start:end + 2], self.buf[end + 2:]
                img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
                if img is not None:
                    return img
                continue
            chunk = self.resp.read1(65536) if hasattr(self.resp, "read1") else self.resp.read(4096)
            if not chunk:
                raise ConnectionError("stream ended")
            self.buf += chunk
            if len(self.buf) > 32 * 1024 * 1024:
                raise ConnectionError("no JPEG frame in 32 MiB of stream")

    def close(self) -> None:
        try:
            self.resp.close()
        except Exception:
            pass


@register("stream_source")
class StreamSource(SourceNode):
    """An rtsp:// or http(s):// stream. MJPEG over HTTP is read directly; everything else through OpenCV's
    FFmpeg (RTSP with RTP over TCP first, see `_CvReader`), with `timeout` seconds to open and to read a frame.
    When the stream cannot be reached or drops it retries with exponential backoff (`backoff` seconds doubling
    up to `max_backoff`), logging each retry; after `max_retries` failed attempts in a row (default 5; 0: retry
    forever) it fails with a clear error."""

    live = True

    def __init__(self, name: str, url: str, timeout: float = 5.0, backoff: float = 0.5, max_backoff: float = 5.0,
                 max_retries: int = 5, fps: float | None = None, **options):
        super().__init__(name, **options)
        self.url, self.timeout = url, float(timeout)
        self.backoff, self.max_backoff, self.max_retries = float(backoff), float(max_backoff), int(max_retries)
        for key in ("timeout", "backoff", "max_backoff", "max_retries"):
            if getattr(self, key) < 0 or (key == "timeout" and not self.timeout):
                raise EdgekitError(f"node '{name}' (stream_source): {key} must be "
                                   f"{'> 0' if key == 'timeout' else '>= 0'}, not {getattr(self, key)}")
        self.fps = fps or 30.0
        self._reader = None
        self._failures = 0
        self._stop = threading.Event()
        self.reconnects = 0  # successful reconnections after a drop
        self.connected_once = False
        self._delivered = False  # the current connection has given a frame
        self.log = None  # a callable for the retry lines (default: the graph's log)

    def open(self) -> None:
        if self.url.split("://")[0] not in ("rtsp", "http", "https", "rtmp", "udp", "tcp"):
            raise EdgekitError(f"{self.url}: not a stream URL (rtsp://, http://, ...)")
        if self.log is None:
            self.log = (self.graph.info.get("log") if self.graph is not None else None) or print
        self._connect()  # first attempt now, so a wrong URL is reported at once; failures are retried

    def _connect(self) -> bool:
        try:
            if self.url.startswith("http"):
                try:
                    self._reader = MjpegReader(self.url, self.timeout)
                except ValueError:
                    self._reader = _CvReader(self.url, self.timeout)
            else:
                self._reader = _CvReader(self.url, self.timeout)
        except Exception as e:  # refused, timed out, 404 ...
            self._reader = None
            self._last_error = e
            return False
        self._delivered = False
        return True

    def read(self):
        if self._stop.is_set():
            return None
        if self._reader is None:
            reason = _reason(getattr(self, "_last_error", None), self.url, self.timeout)
            if self.max_retries and self._failures >= self.max_retries:
                raise EdgekitError(f"{self.name} {self.url}: {reason}; gave up after {self._failures} "
                                   f"retr{'y' if self._failures == 1 else 'ies'} (max_retries: "
                                   f"{self.max_retries}; 0 retries forever)")
            delay = min(self.max_backoff, self.backoff * (2 ** min(self._failures, 16)))
            self._failures += 1
            self.log(f"{self.name} {self.url}: {reason}, retry {self._failures}/{self.max_retries or 'forever'} "
                     f"in {delay:.1f} s")
            if self._stop.wait(delay):
                return None
            if not self._connect():
                raise Retry()
        try:
            frame = self._reader.read()
        except Exception as e:  # the stream dropped: reconnect on the next read
            self._last_error = e
            self._reader.close()
            self._reader = None
            raise Retry() from None
        if not self._delivered:  # a connection counts once it gives a frame: OpenCV calls an RTSP stream opened
            self._delivered = True  # when FFmpeg's probe timed out without one (a hung camera)
            self.reconnects += self.connected_once
            self.connected_once = True
            self._failures = 0
        return frame

    def request_stop(self) -> None:
        self._stop.set()
        reader = self._reader
        # Closing an HTTP response ends a blocked read at once; an OpenCV capture must not be released while the
        # source thread reads it (that crashes): its read returns within `timeout`, then the source sees the stop.
        if isinstance(reader, MjpegReader):
            reader.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _reason(e: BaseException | None, url: str, timeout: float) -> str:
    """Why a stream could not be read, in a few words ("connection refused", "HTTP 404 Not Found")."""
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError) and isinstance(e.reason, BaseException):
        e = e.reason
    elif isinstance(e, urllib.error.URLError):
        return str(e.reason)
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[0].lower() + e.strerror[1:]
    return str(e) if e is not None and str(e) else "no frames"


class _CvReader:
    def __init__(self, url: str, timeout: float):
        import cv2

        if url.startswith("rtsp"):
            # RTP over the RTSP TCP connection first (no lost UDP packets on Wi-Fi, no firewall/NAT trouble; UDP only
            # if the camera refuses TCP). That is OpenCV's own default, but OpenCV 4.11 inverted its test of
            # OPENCV_FFMPEG_CAPTURE_OPTIONS (opencv/opencv#26793): unset, FFmpeg gets no options and tries UDP
            # first. Setting it restores TCP first there and is what OpenCV does anyway elsewhere. A value the user
            # set is kept.
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_flags;prefer_tcp")
        self.cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout * 1000),
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout * 1000)])
        if not self.cap.isOpened():
            self.cap.release()
            _probe(url, timeout)  # says "connection refused" / "no answer" where that is why
            raise ConnectionError("the server answered but FFmpeg could not open the stream")

    def read(self):
        ok, frame = self.cap.read()
        if not ok:
            raise ConnectionError("read failed")
        return frame

    def close(self) -> None:
        self.cap.release()


def _probe(url: str, timeout: float) -> None:
    """Raise the socket error if nothing accepts a TCP connection at the URL's host and port."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    try:
        port = u.port or {"rtsp": 554, "rtmp": 1935}.get(u.scheme)
    except ValueError:
        raise ConnectionError(f"bad port in {url}") from None
    if u.hostname and port and u.scheme in ("rtsp", "rtmp", "tcp"):
        socket.create_connection((u.hostname, port), timeout=timeout).close()


# The options a --source string fills in itself (the rest come from the graph's node, --set and flags).
SOURCE_LOCATION_OPTIONS = ("index", "url", "path")
SOURCE_TYPES = (CameraSource, StreamSource, ImageSource, VideoSource)


def source_for(text: str) -> tuple[type, dict]:
    """A --source string -> (the source class, its location option): `0` (camera), a video file, a folder or
    pattern of images, a stream URL."""
    text = str(text)
    if text.isdigit():
        return CameraSource, {"index": int(text)}
    if "://" in text:
        return StreamSource, {"url": text}
    p = Path(text)
    if p.is_dir() or any(c in text for c in "*?[") or p.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource, {"path": text}
    if not p.exists():
        raise EdgekitError(f"--source {text}: no such file, folder, camera index or URL")
    return VideoSource, {"path": text}


def source_from_text(text: str, name: str = "source", **options) -> SourceNode:
    """A --source string -> a source node, with the given options that kind of source takes (`loop` means
    nothing to a camera; the others are left out)."""
    return make(name, *source_for(text), options)[0]
