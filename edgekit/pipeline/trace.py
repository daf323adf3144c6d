"""Chrome trace (chrome://tracing, Perfetto) of node activity: one complete event per processed packet,
one track per node thread. Written at the end of a run as a JSON array."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class Trace:
    def __init__(self, path: str | Path, origin: float, limit: int = 200_000):
        self.path = Path(path)
        self.origin = origin
        self.limit = limit
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._tids: dict[str, int] = {}

    def _tid(self, node: str) -> int:
        if node not in self._tids:
            self._tids[node] = len(self._tids) + 1
            self._events.append({"name": "thread_name", "ph": "M", "pid": os.getpid(), "tid": self._tids[node],
                                 "args": {"name": node}})
        return self._tids[node]

    def span(self, node: str, name: str, start: float, end: float, seq: int) -> None:
        with self._lock:
            if len(self._events) >= self.limit:
                return
            self._events.append({"name": name, "cat": "node", "ph": "X", "pid": os.getpid(), "tid": self._tid(node),
                                 "ts": (start - self.origin) * 1e6, "dur": (end - start) * 1e6,
                                 "args": {"seq": seq}})

    def instant(self, node: str, name: str, t: float, seq: int | None = None) -> None:
        with self._lock:
            if len(self._events) < self.limit:
                self._events.append({"name": name, "ph": "i", "s": "t", "pid": os.getpid(), "tid": self._tid(node),
                                     "ts": (t - self.origin) * 1e6, "args": {"seq": seq}})

    def save(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self._lock:
            tmp.write_text(json.dumps({"traceEvents": self._events, "displayTimeUnit": "ms"}))
        tmp.replace(self.path)
        return self.path
