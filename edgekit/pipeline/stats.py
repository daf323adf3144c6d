"""Per-node statistics (packets in/out, drops, processing time, rate) and the end-of-run summary."""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

_KEEP = 4096  # latency samples kept per node (a ring; enough for stable median/p90)


def _pct(values, q) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


@dataclass
class NodeStats:
    name: str
    kind: str
    packets_in: int = 0
    packets_out: int = 0
    empty_out: int = 0  # timestamps the node emitted nothing for
    dropped_in: int = 0  # packets dropped by the node's input queues (policy) or joins
    busy_s: float = 0.0
    first: float | None = None
    last: float | None = None
    _lat: collections.deque = field(default_factory=lambda: collections.deque(maxlen=_KEEP))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, start: float, end: float) -> None:
        with self._lock:
            self.packets_in += 1
            self.busy_s += end - start
            self.first = start if self.first is None else self.first
            self.last = end
            self._lat.append(end - start)  # a ring: the oldest sample falls out

    def as_dict(self) -> dict:
        with self._lock:
            lat = list(self._lat)
        span = (self.last - self.first) if self.first is not None and self.last and self.last > self.first else 0
        return {"node": self.name, "kind": self.kind, "in": self.packets_in, "out": self.packets_out,
                "empty": self.empty_out, "dropped": self.dropped_in,
                "rate_fps": (self.packets_in / span) if span else None,
                "latency_ms_median": _ms(_pct(lat, 50)), "latency_ms_p90": _ms(_pct(lat, 90)),
                "busy_s": round(self.busy_s, 4)}


def _ms(v):
    return None if v is None else v * 1000.0


@dataclass
class RunSummary:
    frames_in: int = 0  # frames the source read
    frames_admitted: int = 0  # frames the flow limiter let in
    frames_processed: int = 0  # frames that reached the end of the graph
    frames_dropped: int = 0  # limiter drops + drops inside the graph
    seconds: float = 0.0
    stopped_by: str = ""  # "end of stream", "max frames", "interrupted", "error in node 'x'"
    e2e_ms: list = field(default_factory=list)  # capture -> end of graph per processed frame
    nodes: list = field(default_factory=list)  # NodeStats.as_dict() per node
    first_done: float | None = None  # monotonic time the first and the last frame left the graph
    last_done: float | None = None

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_fps(self) -> float:
        """Frames per second between the first and the last frame leaving the graph: the throughput without
        the time the first frame takes to fill the pipeline (which is latency, not rate)."""
        span = (self.last_done - self.first_done) if self.first_done is not None else 0.0
        return (self.frames_processed - 1) / span if span > 0 else self.fps

    def frame_done(self, now: float, capture_ts: float) -> None:
        self.frames_processed += 1
        self.first_done = now if self.first_done is None else self.first_done
        self.last_done = now
        self.e2e_ms.append((now - capture_ts) * 1000.0)
        if len(self.e2e_ms) > 20000:
            del self.e2e_ms[:10000]

    def as_dict(self) -> dict:
        return {"frames_in": self.frames_in, "frames_admitted": self.frames_admitted,
                "frames_processed": self.frames_processed, "frames_dropped": self.frames_dropped,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
                "fps_steady": round(self.steady_fps, 2), "stopped_by": self.stopped_by,
                "e2e_latency_ms_median": _pct(self.e2e_ms, 50), "e2e_latency_ms_p90": _pct(self.e2e_ms, 90),
                "nodes": self.nodes}

    def format(self) -> str:
        d = self.as_dict()
        lines = [f"pipeline stopped by {self.stopped_by or '?'} after {d['seconds']:.1f} s: "
                 f"{self.frames_in} frames in, {self.frames_processed} processed, {self.frames_dropped} dropped, "
                 f"{d['fps']:.1f} frames/s ({d['fps_steady']:.1f} in steady state)"]
        if self.e2e_ms:
            lines.append(f"end-to-end latency (capture -> sink): median {d['e2e_latency_ms_median']:.1f} ms, "
                         f"p90 {d['e2e_latency_ms_p90']:.1f} ms")
        models = [f"{n['node']} {n['model']['format']} {n['model']['precision']}"
                  + (f" ({', '.join(n['model']['refused'])} refused by its gate)" if n["model"]["refused"] else "")
                  for n in self.nodes if n.get("model")]
        if models:
            lines.append("models: " + ", ".join(models))
        lines.append(format_nodes(self.nodes))
        return "\n".join(lines)


def format_nodes(nodes: list[dict]) -> str:
    head = f"{'node':<16} {'kind':<18} {'in':>6} {'out':>6} {'drop':>5} {'rate/s':>8} {'med ms':>8} {'p90 ms':>8}"
    rows = [head]
    for n in nodes:
        rows.append(f"{n['node'][:16]:<16} {n['kind'][:18]:<18} {n['in']:>6} {n['out']:>6} {n['dropped']:>5} "
                    f"{_f(n['rate_fps'], 1):>8} {_f(n['latency_ms_median'], 2):>8} {_f(n['latency_ms_p90'], 2):>8}")
    return "\n".join(rows)


def _f(v, digits):
    return "-" if v is None else f"{v:.{digits}f}"


class Clock:
    """Monotonic seconds, and the origin a Chrome trace counts microseconds from."""

    def __init__(self):
        self.origin = time.monotonic()

    def us(self, t: float) -> float:
        return (t - self.origin) * 1e6
