"""Edge queues and the flow limiter, on real threads."""
from __future__ import annotations

import threading
import time

import pytest

from edgekit.errors import EdgekitError
from edgekit.pipeline.flow import FlowLimiter
from edgekit.pipeline.packet import EOS, Packet
from edgekit.pipeline.queues import EdgeQueue


def packets(n):
    return [Packet(i, float(i), i) for i in range(n)]


def test_drop_oldest_keeps_the_newest():
    dropped = []
    q = EdgeQueue("e", size=3, policy="drop-oldest", on_drop=dropped.append)
    for p in packets(5):
        assert q.put(p)
    assert [q.get(0.1).seq for _ in range(3)] == [2, 3, 4]
    assert [p.seq for p in dropped] == [0, 1] and q.dropped == 2


def test_keep_latest_holds_one():
    q = EdgeQueue("e", size=8, policy="keep-latest")
    for p in packets(4):
        q.put(p)
    assert len(q) == 1 and q.get(0.1).seq == 3


def test_block_waits_for_room_and_stop_releases_it():
    stop = threading.Event()
    q = EdgeQueue("e", size=1, policy="block", stop=stop)
    q.put(packets(1)[0])
    done = []
    t = threading.Thread(target=lambda: done.append(q.put(Packet(1, 1.0, 1))))
    t.start()
    time.sleep(0.2)
    assert not done  # blocked: the queue is full
    assert q.get(0.1).seq == 0
    t.join(2)
    assert done == [True]
    t2 = threading.Thread(target=lambda: done.append(q.put(Packet(3, 3.0, 3))))
    t2.start()
    time.sleep(0.1)
    stop.set()  # a stopping graph never leaves a producer hanging
    t2.join(2)
    assert not t2.is_alive() and done[-1] is False


def test_eos_is_never_dropped():
    q = EdgeQueue("e", size=1, policy="drop-oldest")
    q.put(packets(1)[0])
    q.put(EOS)
    q.put(Packet(1, 1.0, 1))
    items = [q.get(0.1), q.get(0.1)]
    assert EOS in items


def test_bad_policy_is_a_clear_error():
    with pytest.raises(EdgekitError, match="unknown queue policy"):
        EdgeQueue("frames->det.in", policy="lifo")


def test_flow_limiter_drop_and_back_edge():
    lim = FlowLimiter(2, "drop")
    assert lim.admit(0) and lim.admit(1)
    assert not lim.admit(2) and lim.dropped == 1  # full: the frame is dropped, not queued
    lim.finished(1)  # the end of the graph finished frame 1: frames 0 and 1 are out
    assert lim.in_flight == 0 and lim.admit(3)
    lim.dropped_inside(3)
    assert lim.in_flight == 0


def test_flow_limiter_block_waits():
    lim = FlowLimiter(1, "block")
    assert lim.admit(0)
    got = []
    t = threading.Thread(target=lambda: got.append(lim.admit(1)))
    t.start()
    time.sleep(0.15)
    assert not got
    lim.finished(0)
    t.join(2)
    assert got == [True]
