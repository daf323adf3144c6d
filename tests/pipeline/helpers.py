"""Small real nodes for engine tests (registered under test_* names; no mocks: they run in the real graph)."""
from __future__ import annotations

import threading
import time

import numpy as np

from edgekit.pipeline import Node, SourceNode, register


@register("test_frames")
class Frames(SourceNode):
    """`count` synthetic BGR frames (value = frame number), optionally paced at `fps` as a live source."""

    def __init__(self, name, count=20, fps=None, size=(64, 48), **options):
        super().__init__(name, **options)
        self.count, self.fps, self.size = count, fps, size
        self.live = fps is not None
        self.i = 0
        self._stop = threading.Event()
        self._next = None

    def read(self):
        if self.count is not None and self.i >= self.count:
            return None
        if self.fps:
            now = time.monotonic()
            self._next = self._next or now
            if self._next > now:
                self._stop.wait(self._next - now)
            self._next += 1.0 / self.fps
        frame = np.full((self.size[1], self.size[0], 3), self.i % 256, np.uint8)
        self.i += 1
        return frame

    def request_stop(self):
        self._stop.set()


@register("test_sleep")
class Sleep(Node):
    inputs, outputs = ("in",), ("out",)

    def __init__(self, name, ms=10, **options):
        super().__init__(name, **options)
        self.s = ms / 1000.0

    def process(self, inputs, packet):
        time.sleep(self.s)
        return inputs["in"]


@register("test_skip_odd")
class SkipOdd(Node):
    """Emits nothing for odd frames (a detector that found nothing)."""

    inputs, outputs = ("in",), ("out",)

    def process(self, inputs, packet):
        return None if packet.seq % 2 else {"items": [{"box": [1, 1, 10, 10]}]}


@register("test_fail")
class Fail(Node):
    inputs, outputs = ("in",), ("out",)

    def __init__(self, name, at=5, **options):
        super().__init__(name, **options)
        self.at = at

    def process(self, inputs, packet):
        if packet.seq >= self.at:
            raise ValueError(f"broken at frame {packet.seq}")
        return inputs["in"]


@register("test_collect")
class Collect(Node):
    """A sink that keeps (seq, ts, payload) for the test to inspect."""

    inputs, outputs = ("in",), ()
    is_sink = True

    def __init__(self, name, **options):
        super().__init__(name, **options)
        self.items = []

    def process(self, inputs, packet):
        self.items.append((packet.seq, packet.ts, inputs["in"], time.monotonic()))


@register("test_pair")
class Pair(Node):
    """Joins a frame with an optional result (checks the join's timestamp alignment)."""

    inputs, outputs = ("frame", "result"), ("out",)
    optional_inputs = ("result",)

    def process(self, inputs, packet):
        return {"seq": packet.seq, "value": int(inputs["frame"][0, 0, 0]),
                "has_result": inputs.get("result") is not None}
