"""Quiet native libraries: runtimes print their own chatter straight to the process's stdout/stderr file
descriptors (MNN's "The device supports: i8sdot:0 ..." and "MNN use high precision", LiteRT's "Created
TensorFlow Lite XNNPACK delegate"), past Python's sys.stdout. `quiet()` points fds 1 and 2 at a file while a
runtime loads, keeps what it printed (`recent()`, for error reports) and shows it only when EDGEKIT_VERBOSE is
set (`edgekit --verbose`)."""
from __future__ import annotations

import collections
import contextlib
import os
import sys
import tempfile
import threading

_recent: collections.deque[str] = collections.deque(maxlen=50)
_lock = threading.Lock()


def verbose() -> bool:
    return os.environ.get("EDGEKIT_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def quiet():
    """Capture what native code writes to fds 1 and 2 during the block (not re-entrant across threads: one
    capture at a time; a nested or concurrent call runs uncaptured)."""
    if verbose() or not _lock.acquire(blocking=False):
        yield
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # no such fds (an embedded interpreter): nothing to capture
            yield
            return
        with tempfile.TemporaryFile(mode="w+b") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
                sink.seek(0)
                text = sink.read().decode(errors="replace")
                _recent.extend(line for line in text.splitlines() if line.strip())
    finally:
        _lock.release()


def recent() -> list[str]:
    """The last lines native libraries printed while quieted (for an error report)."""
    return list(_recent)
