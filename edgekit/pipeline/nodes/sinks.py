"""Sinks: a video file, JSON lines, a window (only where a display exists) and an MJPEG-over-HTTP viewer.
`sink_from_text(text)` picks one from a --sink string."""
from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from pathlib import Path

import numpy as np

from ...errors import EdgekitError
from ..node import Node, make, register
from ..outputs import output_path

LOOPBACK = "127.0.0.1"
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
        self.path = output_path(f"node '{name}'", path)
        self.fps = fps
        ext = self.path.suffix.lower()
        if fourcc is None and ext not in FOURCC:
            raise EdgekitError(f"{path}: unknown video extension; use one of {', '.join(sorted(FOURCC))} "
                               "(H.264 is not available in this OpenCV)")
        self.fourcc = fourcc or FOURCC[ext]
        self._writer = None
        self.frames = 0

    def output_files(self) -> list[Path]:
        return [self.path]

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
    light = True  # one json.dumps and a buffered write per frame

    def __init__(self, name: str, path: str, flush: bool = True, **options):
        super().__init__(name, **options)
        self.path, self.flush = (str(path) if path == "-" else str(output_path(f"node '{name}'", path))), bool(flush)
        self._f = None

    def output_files(self) -> list[Path]:
        return [] if self.path == "-" else [Path(self.path)]

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
                               "http://0.0.0.0:8080 to watch from a browser (it prints the URL with its access "
                               "token), or a video file")
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
    latest frame and `/stats.json` the statistics. Serves until the graph closes.

    It listens on `host` (default 127.0.0.1: this machine only). Any other address (0.0.0.0: every interface)
    needs an access token in every URL (`?token=...`): `token:`, or one is made and printed with the URL.
    At most `max_clients` connections at once (more get 503); a client that stops reading is dropped."""

    inputs = ("in",)
    outputs = ()
    is_sink = True

    def __init__(self, name: str, host: str = LOOPBACK, port: int = 8080, quality: int = 80,
                 token: str | None = None, max_clients: int = 8, **options):
        super().__init__(name, **options)
        self.host, self.port, self.quality = str(host or LOOPBACK), int(port), int(quality)
        self.max_clients = int(max_clients)
        where = f"node '{name}' (http_sink)"
        if not 0 <= self.port <= 65535:
            raise EdgekitError(f"{where}: port {self.port} is out of range (0-65535; 0 picks a free one)")
        if not 1 <= self.quality <= 100:
            raise EdgekitError(f"{where}: quality {self.quality} is out of range (1-100)")
        if self.max_clients < 1:
            raise EdgekitError(f"{where}: max_clients must be at least 1, not {self.max_clients}")
        self.token = str(token) if token else (None if is_loopback(self.host) else secrets.token_urlsafe(12))
        self._server = None

    def open(self) -> None:
        from ..mjpeg import MjpegServer

        stats = (lambda: self.graph.snapshot().as_dict()) if self.graph is not None else (lambda: {})
        title = self.graph.name if self.graph is not None else "edgekit"
        try:
            self._server = MjpegServer(self.host, self.port, stats=stats, title=title, token=self.token,
                                       max_clients=self.max_clients)
        except OSError as e:
            raise EdgekitError(f"cannot serve on {self.host}:{self.port}: {e.strerror or e}") from None
        self.port = self._server.port
        log = (self.graph.info.get("log") if self.graph else None) or (lambda m: None)
        log(self.describe())

    def url(self, host: str | None = None) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"http://{host or self.host}:{self.port}/{query}"

    def describe(self) -> str:
        """The log line: the address it really listens on, and the URL to open."""
        bound = f"{self.host}:{self.port}"
        if is_loopback(self.host):
            return f"viewer: {self.url()} (listening on {bound}, this machine only)"
        every = self.host in ("0.0.0.0", "")
        what, host = ("every interface", "THIS-MACHINE") if every else ("reachable from the network", self.host)
        return f"viewer: {self.url(host)} (listening on {bound}, {what}; the token is required)"

    def process(self, inputs, packet):
        self._server.publish(inputs["in"], self.quality)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sink_for(text: str) -> tuple[type, dict]:
    """A --sink string -> (the sink class, the options the string gives): `window`, `jsonl:FILE`,
    `http://[HOST]:PORT[/?token=T]` (no host: 127.0.0.1), or a video file path."""
    if text == "window":
        return WindowSink, {}
    if text.startswith("jsonl:"):
        return JsonlSink, {"path": text[len("jsonl:"):]}
    if text.startswith("http://"):
        from urllib.parse import parse_qs, urlsplit

        u = urlsplit(text)
        host, _, port = u.netloc.rpartition(":")
        if not port.isdigit():
            raise EdgekitError(f"--sink {text}: write http://HOST:PORT, e.g. http://127.0.0.1:8080")
        if not 0 <= int(port) <= 65535:
            raise EdgekitError(f"--sink {text}: port {int(port)} is out of range (0-65535)")
        options = {"host": host or LOOPBACK, "port": int(port)}
        token = parse_qs(u.query).get("token")
        if token:
            options["token"] = token[0]
        return HttpSink, options
    if Path(text).suffix.lower() in FOURCC:
        return VideoSink, {"path": text}
    raise EdgekitError(f"--sink {text}: give window, jsonl:FILE, http://HOST:PORT or a video file "
                       f"({', '.join(sorted(FOURCC))})")


def sink_from_text(text: str, name: str = "sink", **options) -> Node:
    """A --sink string -> a sink node, with the given options that kind of sink takes."""
    return make(name, *sink_for(text), options)[0]
SINK_CLASSES = (VideoSink, JsonlSink, WindowSink, HttpSink)
# The options a --sink string fills in itself.
SINK_LOCATION_OPTIONS = ("path", "host", "port")
