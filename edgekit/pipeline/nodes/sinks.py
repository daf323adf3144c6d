"""Sinks: a video file, JSON lines, a window (only where a display exists) and an MJPEG-over-HTTP viewer.
`sink_from_text(text)` picks one from a --sink string."""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np

from ...errors import EdgekitError
from ..node import Node, register

FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".webm": "VP80", ".mkv": "MJPG"}


@register("video_sink")
class VideoSink(Node):
    """Write frames to a video file (codec from the extension: .avi MJPG, .mp4 mp4v, .webm VP8). The file is
    written beside its final name and renamed on close, so a finished run leaves a complete, playable file."""

    inputs = ("in",)
    outputs = ()
    is_sink = True

    def __init__(self, name: str, path: str, fps: float | None = None, fourcc: str | None = None, **options):
        super().__init__(name, **options)
        self.path = Path(path)
        self.fps = fps
        ext = self.path.suffix.lower()
        if fourcc is None and ext not in FOURCC:
            raise EdgekitError(f"{path}: unknown video extension; use one of {', '.join(sorted(FOURCC))} "
                               "(H.264 is not available in this OpenCV)")
        self.fourcc = fourcc or FOURCC[ext]
        self._writer = None
        self.frames = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")

    def process(self, inputs, packet):
        import cv2

        frame = inputs["in"]
        if self._writer is None:
            h, w = frame.shape[:2]
            fps = self.fps or (self.graph.info.get("fps") if self.graph else None) or 30.0
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), float(fps), (w, h))
            if not self._writer.isOpened():
                raise EdgekitError(f"{self.path}: OpenCV cannot write {self.fourcc} video")
            self._size = (w, h)
        if (frame.shape[1], frame.shape[0]) != self._size:
            import cv2

            frame = cv2.resize(frame, self._size)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)


def to_jsonable(value):
    """Results as JSON; large arrays (frames) are described, not dumped."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size > 4096:
            return {"array": list(value.shape), "dtype": value.dtype.name}
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@register("jsonl_sink")
class JsonlSink(Node):
    """One JSON object per frame: {"seq", "ts", ...payload} (payload dicts are merged in, other values go
    under "value"); `-` writes to stdout."""

    inputs = ("in",)
    outputs = ()
    is_sink = True

    def __init__(self, name: str, path: str, flush: bool = True, **options):
        super().__init__(name, **options)
        self.path, self.flush = str(path), bool(flush)
        self._f = None

    def open(self) -> None:
        if self.path == "-":
            self._f = sys.stdout
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")
        self._t0 = None

    def process(self, inputs, packet):
        v = inputs["in"]
        rec = {"seq": packet.seq, "ts": round(packet.ts, 6)}
        rec.update(v if isinstance(v, dict) else {"value": v})
        try:  # the payloads are mostly plain lists already: let the C encoder walk them
            line = json.dumps(rec, ensure_ascii=False, default=to_jsonable)
        except (TypeError, ValueError):  # non-string keys or the like: the thorough walk
            line = json.dumps(to_jsonable(rec), ensure_ascii=False)
        self._f.write(line + "\n")
        if self.flush:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None and self._f is not sys.stdout:
            self._f.close()
        self._f = None


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


@register("window_sink")
class WindowSink(Node):
    """An OpenCV window (desktop only). On a headless machine it refuses at open with a clear message.

    The window is drawn by `Pipeline.run()` in the thread that called it (the main thread): Qt and macOS allow GUI
    work only there. The node's own thread hands over the newest frame; q or Esc in the window stops."""

    inputs = ("in",)
    outputs = ()
    is_sink = True

    def __init__(self, name: str, title: str = "edgekit", **options):
        super().__init__(name, **options)
        self.title = title
        self._frame = None
        self._lock = threading.Lock()
        self.shown = 0

    def open(self) -> None:
        if not has_display():
            raise EdgekitError("no display here (DISPLAY/WAYLAND_DISPLAY unset), so no window: use --sink "
                               "http://0.0.0.0:8080 to watch from a browser, or a video file")
        if self.graph is not None:
            self.graph.on_main_thread(self, self.show)

    def process(self, inputs, packet):
        with self._lock:
            self._frame = inputs["in"]
        if threading.current_thread() is threading.main_thread():  # run_inline: no other thread to draw
            self.show()

    def show(self) -> None:
        import cv2

        with self._lock:
            frame, self._frame = self._frame, None
        if frame is not None:
            cv2.imshow(self.title, frame)
            self.shown += 1
        if cv2.waitKey(1) & 0xFF in (27, ord("q")) and self.graph is not None:
            self.graph.stop("window closed")

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


@register("http_sink")
class HttpSink(Node):
    """An MJPEG-over-HTTP viewer: `/` is a page with the live video and the per-node statistics, `/stream.mjpg`
    the multipart JPEG stream (any browser, VLC, or another edgekit pipeline's --source), `/frame.jpg` the
    latest frame and `/stats.json` the statistics. Serves until the graph closes."""

    inputs = ("in",)
    outputs = ()
    is_sink = True

    def __init__(self, name: str, host: str = "0.0.0.0", port: int = 8080, quality: int = 80, **options):
        super().__init__(name, **options)
        self.host, self.port, self.quality = host, int(port), int(quality)
        self._server = None

    def open(self) -> None:
        from ..mjpeg import MjpegServer

        stats = (lambda: self.graph.snapshot().as_dict()) if self.graph is not None else (lambda: {})
        title = self.graph.name if self.graph is not None else "edgekit"
        try:
            self._server = MjpegServer(self.host, self.port, stats=stats, title=title)
        except OSError as e:
            raise EdgekitError(f"cannot serve on {self.host}:{self.port}: {e.strerror or e}") from None
        self.port = self._server.port
        log = (self.graph.info.get("log") if self.graph else None) or (lambda m: None)
        log(f"viewer: http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}/")

    def process(self, inputs, packet):
        self._server.publish(inputs["in"], self.quality)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def sink_from_text(text: str, name: str = "sink") -> Node:
    """A --sink string -> a sink node: `window`, `jsonl:FILE`, `http://HOST:PORT`, or a video file path."""
    if text == "window":
        return WindowSink(name)
    if text.startswith("jsonl:"):
        return JsonlSink(name, path=text[len("jsonl:"):])
    if text.startswith("http://"):
        hostport = text[len("http://"):].split("/")[0]
        host, _, port = hostport.rpartition(":")
        if not port.isdigit():
            raise EdgekitError(f"--sink {text}: write http://HOST:PORT, e.g. http://0.0.0.0:8080")
        return HttpSink(name, host=host or "0.0.0.0", port=int(port))
    if Path(text).suffix.lower() in FOURCC:
        return VideoSink(name, path=text)
    raise EdgekitError(f"--sink {text}: give window, jsonl:FILE, http://HOST:PORT or a video file "
                       f"({', '.join(sorted(FOURCC))})")
