"""Packets: a payload plus the capture timestamp of the source frame it belongs to.

`seq` is the frame's number at the source (strictly increasing per stream) and is what nodes synchronise on;
`ts` is the capture time (time.monotonic() seconds) that end-to-end latency is measured from. A packet whose
payload is EMPTY is a timestamp bound: "nothing for this frame on this stream", so joins downstream never wait
for it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


EMPTY = _Marker("EMPTY")  # a node emitted nothing for this timestamp
EOS = _Marker("EOS")  # end of stream: no more packets on this stream


@dataclass(frozen=True)
class Packet:
    seq: int
    ts: float
    payload: Any = EMPTY

    @property
    def empty(self) -> bool:
        return self.payload is EMPTY
