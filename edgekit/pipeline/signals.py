"""Stop signals for a running pipeline: SIGTERM (systemd, `docker stop`) and SIGHUP (a closed SSH session) end a
run the way Ctrl-C does -- the sources stop, the graph drains, every sink finalises its file -- and the process
exits with the conventional 128 + the signal's number (143, 129; Ctrl-C: 130).

`StopSignals` installs the handlers for the duration of a `with` (main thread only; elsewhere it does nothing)
and restores the previous ones after. While `armed` is False (the graph is still starting: models exporting) a
signal raises `Stopped` at once, as Ctrl-C raises KeyboardInterrupt; once armed it is only recorded in
`received`, for the run loop to act on within its poll interval."""
from __future__ import annotations

import signal
import threading

DEFAULT = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


def name(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else signal.Signals(signum).name


def exit_code(signum: int) -> int:
    return 128 + int(signum)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived before the graph ran (it unwinds like Ctrl-C); `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(name(signum))
        self.signum = signum


class StopSignals:
    def __init__(self, signals=DEFAULT):
        self.signals = tuple(signals)
        self.received: list[int] = []
        self.armed = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.received.append(signum)
        if not self.armed:
            raise Stopped(signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
