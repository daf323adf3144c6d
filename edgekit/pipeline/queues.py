"""Bounded queues for the edges of a graph, each with its own policy when full:

- `block`: the producer waits until there is room (back-pressure; nothing is lost);
- `drop-oldest`: the oldest queued packet is dropped to make room;
- `keep-latest`: only the newest packet is kept (a queue of one that is overwritten).

Every wait wakes up on the graph's stop event, so no thread can hang on a queue after a stop."""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from ..errors import EdgekitError
from .packet import EOS, Packet

POLICIES = ("block", "drop-oldest", "keep-latest")


class EdgeQueue:
    def __init__(self, name: str, size: int = 4, policy: str = "block", stop: threading.Event | None = None,
                 on_drop: Callable[[Packet], None] | None = None, cond: threading.Condition | None = None):
        if policy not in POLICIES:
            raise EdgekitError(f"edge '{name}': unknown queue policy '{policy}'; use one of: {', '.join(POLICIES)}")
        if size < 1:
            raise EdgekitError(f"edge '{name}': queue size must be at least 1, not {size}")
        self.name = name
        self.size = 1 if policy == "keep-latest" else size
        self.policy = policy
        self.stop = stop or threading.Event()
        self.on_drop = on_drop or (lambda p: None)
        self._items: collections.deque = collections.deque()
        self._cond = cond or threading.Condition()  # shared by all inputs of one node
        self.dropped = 0
        self.max_depth = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item) -> bool:
        """Queue a Packet (or EOS, which is never dropped and never blocks). False if the graph stopped."""
        dropped = []
        with self._cond:
            if item is not EOS:
                if self.policy == "block":
                    while len(self._items) >= self.size and not self.stop.is_set():
                        self._cond.wait(0.05)
                    if self.stop.is_set():
                        return False
                else:
                    while len(self._items) >= self.size and isinstance(self._items[0], Packet):
                        dropped.append(self._items.popleft())
            self._items.append(item)
            self.max_depth = max(self.max_depth, len(self._items))
            self._cond.notify_all()
        for p in dropped:
            self.dropped += 1
            self.on_drop(p)
        return True

    def get(self, timeout: float | None = None):
        """The next item, or None when the timeout passed or the graph stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self.stop.is_set():
                    return None
                left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                if left <= 0:
                    return None
                self._cond.wait(left)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def pop_nowait(self):
        """The next item or None; the caller holds the shared condition."""
        if not self._items:
            return None
        item = self._items.popleft()
        self._cond.notify_all()
        return item
