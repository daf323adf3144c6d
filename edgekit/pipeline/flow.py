"""The flow limiter: at most N frames in flight between the source and the end of the graph.

The source asks `admit(seq)` before it emits a frame. With `drop` (the default for live sources) a frame that
finds N frames in flight is dropped at once, so a slow model costs frames, not latency; with `block` (files)
the source waits, so every frame is processed. The back edge: when the graph's terminal nodes have finished
frame `seq`, `finished(seq)` frees it and every older frame (streams are in order, so older frames that
never arrived were dropped on the way). A frame dropped inside the graph is freed by `dropped(seq)`."""
from __future__ import annotations

import threading


class FlowLimiter:
    def __init__(self, max_in_flight: int = 2, mode: str = "drop", stop: threading.Event | None = None):
        from ..errors import EdgekitError

        if mode not in ("drop", "block"):
            raise EdgekitError(f"flow limiter mode must be 'drop' or 'block', not '{mode}'")
        if max_in_flight < 1:
            raise EdgekitError(f"flow limiter max_in_flight must be at least 1, not {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.mode = mode
        self.stop = stop or threading.Event()
        self._in_flight: set[int] = set()
        self._cond = threading.Condition()
        self.dropped = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def admit(self, seq: int) -> bool:
        with self._cond:
            if self.mode == "block":
                while len(self._in_flight) >= self.max_in_flight and not self.stop.is_set():
                    self._cond.wait(0.05)
                if self.stop.is_set():
                    return False
            elif len(self._in_flight) >= self.max_in_flight:
                self.dropped += 1
                return False
            self._in_flight.add(seq)
            return True

    def finished(self, seq: int) -> None:
        with self._cond:
            done = {s for s in self._in_flight if s <= seq}
            if done:
                self._in_flight -= done
                self._cond.notify_all()

    def dropped_inside(self, seq: int) -> None:
        with self._cond:
            if seq in self._in_flight:
                self._in_flight.discard(seq)
                self._cond.notify_all()
