"""The graph engine: nodes in threads joined by bounded queues, a flow limiter with a back edge from the end,
timestamp synchronisation for nodes with several inputs, statistics, a Chrome trace and clean shutdown.

    p = Pipeline(max_in_flight=2)
    p.add(VideoSource("src", path="in.avi"), outputs={"frame": "frames"})
    p.add(Annotate("draw"), inputs={"frame": "frames"}, outputs={"out": "drawn"})
    p.add(VideoSink("out", path="out.avi"), inputs={"in": "drawn"})
    summary = p.run()        # until end of stream, max_frames, Ctrl-C or a failing node; then close()

Shutdown: end of stream and Ctrl-C stop the source, which sends end-of-stream through the graph so every
node drains and every sink finalises its file; an exception in a node stops every thread at once and
`run()` raises PipelineError naming the node. After `close()` no thread of the graph is left running."""
from __future__ import annotations

import collections
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from ..errors import EdgekitError
from .flow import FlowLimiter
from .node import Node, Retry, SourceNode
from .packet import EMPTY, EOS, Packet
from .queues import EdgeQueue
from .signals import StopSignals
from .signals import name as signal_name
from .stats import NodeStats, RunSummary
from .trace import Trace

# In flight for file sources under flow "auto": no one waits on a file's frames, so the limit bounds memory, not
# latency, and it must let every stage of a long graph have a frame to work on (at 2 or 3 the face app's cores
# idle 14% of the time waiting for frames; at 8, 4%).
FILES_IN_FLIGHT = 8


class PipelineError(EdgekitError):
    """A node failed; the graph stopped. `node` names it."""

    exit_code = 1

    def __init__(self, node: str, kind: str, error: BaseException, tb: str = ""):
        why = str(error) if isinstance(error, EdgekitError) else f"{type(error).__name__}: {error}"
        super().__init__(f"node '{node}' ({kind}) failed: {why}")
        self.node, self.kind, self.error, self.traceback = node, kind, error, tb


class _Fused(Exception):
    """A fused node failed (already recorded by Pipeline._fail): its producer's thread stops."""


@dataclass
class Edge:
    """One input of one node: which stream feeds it and how its queue behaves when full."""

    stream: str
    size: int | None = None
    policy: str | None = None


class _Slot:
    """A node in the graph with its wiring, queues, thread and statistics."""

    def __init__(self, node: Node, inputs: dict[str, Edge], outputs: dict[str, str]):
        self.node = node
        self.inputs = inputs
        self.outputs = outputs
        self.cond = threading.Condition()
        self.queues: dict[str, EdgeQueue] = {}
        self.thread: threading.Thread | None = None
        self.stats = NodeStats(node.name, node.kind or type(node).__name__)
        self.opened = False
        self.fused = False  # run by its producer's thread (Pipeline._fusable), not a thread of its own


class Pipeline:
    def __init__(self, max_in_flight: int = 2, flow: str = "auto", queue_size: int = 4, queue_policy: str = "block",
                 trace: str | None = None, name: str = "pipeline", drain_timeout: float = 10.0,
                 files_in_flight: int | None = FILES_IN_FLIGHT, fuse_light: bool = True):
        self.name = name
        self.max_in_flight = max_in_flight
        self.files_in_flight = files_in_flight
        self.fuse_light = fuse_light
        self._direct: dict[str, list[tuple[_Slot, str]]] = {}  # stream -> light nodes run in its producer's thread
        self.flow = flow
        self.queue_size = queue_size
        self.queue_policy = queue_policy
        self.drain_timeout = drain_timeout
        self.nodes: dict[str, Node] = {}
        self._slots: dict[str, _Slot] = {}
        self._abort = threading.Event()  # hard stop: every wait returns
        self._draining = threading.Event()  # graceful stop: sources end their streams
        self._lock = threading.Lock()
        self._error: PipelineError | None = None
        self._stop_reason = ""
        self._started = self._closed = False
        self._t0 = 0.0
        self._t_end: float | None = None
        self.summary = RunSummary()
        self.limiter: FlowLimiter | None = None
        self._terminals: list[str] = []
        self._finish_count: dict[int, int] = {}
        self.trace = Trace(trace, time.monotonic()) if trace else None
        self.info: dict = {}  # facts nodes share (e.g. the source's fps for sinks)
        self.max_frames: int | None = None
        self.signal: int | None = None  # the signal that stopped run() (SIGINT for Ctrl-C), if one did
        self._main_tasks: list[tuple[_Slot, Callable[[], None]]] = []

    # ---- building
    def add(self, node: Node, inputs: dict | None = None, outputs: dict | None = None) -> Node:
        if self._started:
            raise EdgekitError("cannot add nodes to a started pipeline")
        if node.name in self._slots:
            raise EdgekitError(f"two nodes are named '{node.name}'")
        ins = {}
        for key, edge in (inputs or {}).items():
            if key not in node.inputs:
                raise EdgekitError(f"node '{node.name}' ({node.kind}) has no input '{key}'; its inputs: "
                                   f"{', '.join(node.inputs) or 'none'}")
            ins[key] = edge if isinstance(edge, Edge) else Edge(**edge) if isinstance(edge, dict) else Edge(str(edge))
        required = [i for i in node.inputs if i not in getattr(node, "optional_inputs", ())]
        missing = [i for i in required if i not in ins]
        if missing:
            raise EdgekitError(f"node '{node.name}' ({node.kind}): input(s) {', '.join(missing)} not connected")
        outs = {}
        for key, stream in (outputs or {}).items():
            if key not in node.outputs:
                raise EdgekitError(f"node '{node.name}' ({node.kind}) has no output '{key}'; its outputs: "
                                   f"{', '.join(node.outputs) or 'none'}")
            outs[key] = str(stream)
        node.graph = self
        self.nodes[node.name] = node
        self._slots[node.name] = _Slot(node, ins, outs)
        return node

    def _wire(self) -> list[str]:
        """Check the wiring, make the queues, and return node names in topological order."""
        producers: dict[str, str] = {}
        for name, slot in self._slots.items():
            for stream in slot.outputs.values():
                if stream in producers:
                    raise EdgekitError(f"stream '{stream}' has two producers: '{producers[stream]}' and '{name}'")
                producers[stream] = name
        consumers = collections.defaultdict(list)
        self._direct = {}
        for name, slot in self._slots.items():
            for key, edge in slot.inputs.items():
                if edge.stream not in producers:
                    raise EdgekitError(f"node '{name}' input '{key}': no node produces stream '{edge.stream}'")
                policy = edge.policy or self.queue_policy
                if self._fusable(slot, policy, self._slots[producers[edge.stream]]):
                    slot.fused = True
                    self._direct.setdefault(edge.stream, []).append((slot, key))
                    continue
                size = edge.size or self.queue_size
                slot.queues[key] = EdgeQueue(f"{edge.stream}->{name}.{key}", size, policy, self._abort,
                                             on_drop=self._on_drop(slot), cond=slot.cond)
                consumers[edge.stream].append(slot.queues[key])
        self._consumers = consumers
        if not any(isinstance(s.node, SourceNode) for s in self._slots.values()):
            raise EdgekitError("the graph has no source node")
        order, seen, visiting = [], set(), set()

        def visit(n):
            if n in seen:
                return
            if n in visiting:
                raise EdgekitError(f"the graph has a cycle through node '{n}'")
            visiting.add(n)
            for edge in self._slots[n].inputs.values():
                visit(producers[edge.stream])
            visiting.discard(n)
            seen.add(n)
            order.append(n)

        for n in self._slots:
            visit(n)
        used = {e.stream for s in self._slots.values() for e in s.inputs.values()}
        self._terminals = [n for n, s in self._slots.items()
                           if not isinstance(s.node, SourceNode) and (s.node.is_sink or not any(
                               st in used for st in s.outputs.values()))]
        return order

    def _fusable(self, slot: _Slot, policy: str, producer: _Slot) -> bool:
        """A light node with one blocking input from a node other than a source runs in its producer's thread:
        a thread handoff (two futex calls and a wake-up) costs about what the node itself does, and a queue of
        its own would only ever block its producer. Sources keep their thread to themselves (reading frames is
        the critical path); drop and keep-latest edges keep their queue (they need one to drop from)."""
        return (self.fuse_light and slot.node.light and len(slot.inputs) == 1 and policy == "block"
                and not isinstance(producer.node, SourceNode) and not getattr(slot.node, "optional_inputs", ()))

    def on_main_thread(self, node: Node, task: Callable[[], None]) -> None:
        """Have `run()` call `task` from the thread that called it (the main thread), every ~15 ms while the
        graph runs: for GUI work, which Qt and macOS allow only there (a node registers it in `open()`)."""
        self._main_tasks.append((self._slots[node.name], task))

    def _run_main_tasks(self) -> None:
        for slot, task in self._main_tasks:
            try:
                task()
            except Exception as e:
                self._fail(slot, e)

    # ---- running
    def start(self) -> "Pipeline":
        if self._started:
            return self
        order = self._wire()
        sources = [self._slots[n].node for n in order if isinstance(self._slots[n].node, SourceNode)]
        live = any(s.live for s in sources)
        mode = self.flow if self.flow != "auto" else ("drop" if live else "block")
        in_flight = self.max_in_flight
        if self.flow == "auto" and not live and self.files_in_flight:
            in_flight = max(in_flight, self.files_in_flight)
        self.limiter = FlowLimiter(in_flight, mode, self._abort)
        self._started = True
        try:
            for n in order:  # upstream first: a preprocess node may ask its inference node for the model's spec
                slot = self._slots[n]
                try:
                    slot.node.open()
                except EdgekitError as e:
                    raise EdgekitError(f"node '{n}' ({slot.stats.kind}): {e}") from None
                except Exception as e:
                    raise PipelineError(n, slot.stats.kind, e, traceback.format_exc()) from None
                slot.opened = True
                if isinstance(slot.node, SourceNode) and slot.node.fps:
                    self.info.setdefault("fps", slot.node.fps)
        except BaseException:
            self.close()
            raise
        self._t0 = time.monotonic()
        for n in reversed(order):
            slot = self._slots[n]
            if slot.fused:
                continue
            target = self._run_source if isinstance(slot.node, SourceNode) else self._run_node
            slot.thread = threading.Thread(target=target, args=(slot,), name=f"edgekit-{n}", daemon=True)
            slot.thread.start()
        return self

    def run_inline(self, max_frames: int | None = None) -> RunSummary:
        """Run the graph in the calling thread, one frame through every node in turn (no threads, no queues):
        the naive loop that the threaded run is compared with, and a deterministic way to debug a graph.
        Per-node statistics then give each stage's standalone rate."""
        if self._started:
            raise EdgekitError("run_inline() needs a pipeline that has not been started")
        order = self._wire()
        self._started = True
        try:
            for n in order:
                self._slots[n].node.open()
                self._slots[n].opened = True
                if isinstance(self._slots[n].node, SourceNode) and self._slots[n].node.fps:
                    self.info.setdefault("fps", self._slots[n].node.fps)
            sources = [n for n in order if isinstance(self._slots[n].node, SourceNode)]
            if len(sources) != 1:
                raise EdgekitError("run_inline() runs graphs with one source")
            self._t0 = time.monotonic()
            s, seq = self.summary, 0
            while max_frames is None or s.frames_in < max_frames:
                src = self._slots[sources[0]]
                src.node.wait_turn()
                start = time.monotonic()
                try:
                    payload = src.node.read()
                except Retry:
                    continue
                if payload is None:
                    self._stop_reason = "end of stream"
                    break
                ts = time.monotonic()
                src.stats.record(start, ts)
                s.frames_in += 1
                s.frames_admitted += 1
                values = {st: Packet(seq, ts, payload) for st in src.outputs.values()}
                for n in order:
                    slot = self._slots[n]
                    if slot is src:
                        continue
                    packets = {k: values.get(e.stream, Packet(seq, ts)) for k, e in slot.inputs.items()}
                    optional = getattr(slot.node, "optional_inputs", ())
                    result = None
                    if not any(p.empty and k not in optional for k, p in packets.items()):
                        t0 = time.monotonic()
                        result = slot.node.process({k: (None if p.empty else p.payload) for k, p in packets.items()},
                                                   Packet(seq, ts, None))
                        slot.stats.record(t0, time.monotonic())
                    if result is None:
                        outs = {}
                    elif (isinstance(result, dict) and len(slot.node.outputs) > 1
                          and set(result) <= set(slot.node.outputs)):
                        outs = result
                    else:
                        outs = {slot.node.outputs[0]: result} if slot.node.outputs else {}
                    for key, stream in slot.outputs.items():
                        values[stream] = Packet(seq, ts, outs.get(key, EMPTY))
                s.frame_done(time.monotonic(), ts)
                seq += 1
            if max_frames is not None and s.frames_in >= max_frames:
                self._stop_reason = self._stop_reason or "max frames"
        finally:
            self.close()
        return self.summary

    def run(self, max_frames: int | None = None, on_stats: Callable[["Pipeline"], None] | None = None,
            stats_interval: float = 1.0, stop_signals=()) -> RunSummary:
        """Start (if needed), wait for the end, close, and return the summary; raise PipelineError if a node
        failed. Ctrl-C stops the sources and lets the graph drain (a second Ctrl-C stops it at once); so do
        `stop_signals` (e.g. `signals.DEFAULT`: SIGTERM, SIGHUP). `self.signal` is then the signal's number
        (SIGINT for Ctrl-C) and the summary says "stopped by SIGTERM" ("interrupted" for Ctrl-C)."""
        self.max_frames = max_frames
        with StopSignals(stop_signals) as sig:
            self.start()  # a stop signal while nodes open raises signals.Stopped, as Ctrl-C raises KeyboardInterrupt
            sig.armed = True
            next_stats = time.monotonic() + stats_interval
            poll = 0.015 if self._main_tasks else 0.1
            handled, deadline = 0, None
            try:
                while True:
                    try:
                        if self.wait(poll):
                            break
                        if len(sig.received) > handled:
                            handled = len(sig.received)
                            if deadline is not None:  # a second stop: at once
                                self._abort.set()
                                break
                            self.signal = sig.received[0]
                            self.stop(signal_name(self.signal))
                            deadline = time.monotonic() + self.drain_timeout
                        if deadline is not None and time.monotonic() >= deadline:
                            break
                        self._run_main_tasks()
                        if on_stats and time.monotonic() >= next_stats:
                            next_stats += stats_interval
                            on_stats(self)
                    except KeyboardInterrupt:
                        sig.received.append(signal.SIGINT)
            finally:
                self.close()
        if self._error:
            raise self._error
        return self.summary

    def wait(self, timeout: float | None = None) -> bool:
        """True when every node thread has finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for slot in self._slots.values():
            if slot.thread is None:
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            slot.thread.join(left)
            if slot.thread.is_alive():
                return False
        return True

    def stop(self, reason: str = "stopped") -> None:
        """Graceful: the sources end their streams and the graph drains."""
        with self._lock:
            self._stop_reason = self._stop_reason or reason
        self._stop_sources()

    def _stop_sources(self) -> None:
        """Let every source end its stream (and wake one blocked reading); the graph then drains."""
        self._draining.set()
        for slot in self._slots.values():
            if isinstance(slot.node, SourceNode):
                try:
                    slot.node.request_stop()
                except Exception:
                    pass

    def close(self) -> RunSummary:
        """Stop everything, join every thread, close every node (sinks finalise files). Idempotent."""
        if self._closed:
            return self.summary
        self._closed = True
        if self._started and not self.wait(0):
            self.stop(self._stop_reason or "closed")
            if not self.wait(self.drain_timeout if not self._abort.is_set() else 0.5):
                self._abort.set()
        self._abort.set()
        stuck = []
        for slot in self._slots.values():
            if slot.thread is not None:
                slot.thread.join(10.0)
                if slot.thread.is_alive():
                    stuck.append(slot.node.name)
        for slot in self._slots.values():
            if slot.opened:
                try:
                    slot.node.close()
                except Exception as e:
                    if self._error is None:
                        self._error = PipelineError(slot.node.name, slot.stats.kind, e, traceback.format_exc())
        self._t_end = self._t_end or time.monotonic()
        self._fill_summary()
        if self.trace:
            self.trace.save()
        if stuck and self._error is None:
            self._error = PipelineError(stuck[0], self._slots[stuck[0]].stats.kind,
                                        RuntimeError("thread did not stop within 10 s"))
        return self.summary

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def error(self) -> PipelineError | None:
        return self._error

    def output_files(self) -> list[tuple]:
        """(file, "node 'x'") for every file the graph's nodes write."""
        return [(f, f"node '{n.name}'") for n in self.nodes.values() for f in n.output_files()]

    def threads(self) -> list[threading.Thread]:
        return [s.thread for s in self._slots.values() if s.thread is not None and s.thread.is_alive()]

    # ---- statistics
    def fps(self) -> float:
        """Frames through the whole graph per second so far (cheap; safe from any thread)."""
        secs = (self._t_end or time.monotonic()) - self._t0 if self._t0 else 0.0
        return self.summary.frames_processed / secs if secs > 0 else 0.0

    def snapshot(self) -> RunSummary:
        self._fill_summary()
        return self.summary

    def _fill_summary(self) -> None:
        s = self.summary
        end = self._t_end or time.monotonic()
        s.seconds = (end - self._t0) if self._t0 else 0.0
        s.stopped_by = self._stop_reason or ("error" if self._error else "")
        if self._error:
            s.stopped_by = f"error in node '{self._error.node}'"
        s.frames_dropped = s.frames_admitted - s.frames_processed + (self.limiter.dropped if self.limiter else 0)
        if not self._closed or self._t_end is None:
            s.frames_dropped -= (self.limiter.in_flight if self.limiter else 0)
        s.nodes = [slot.stats.as_dict() for slot in self._slots.values()]
        for d, slot in zip(s.nodes, self._slots.values()):
            if hasattr(slot.node, "model_info"):  # inference nodes: the artifact and the precision it runs at
                d["model"] = slot.node.model_info()

    # ---- threads
    def _fail(self, slot: _Slot, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = PipelineError(slot.node.name, slot.stats.kind, error, traceback.format_exc())
                self._stop_reason = f"error in node '{slot.node.name}'"
        self._abort.set()
        self._stop_sources()

    def _on_drop(self, slot: _Slot):
        def dropped(packet: Packet) -> None:
            slot.stats.dropped_in += 1
            if self.limiter:
                self.limiter.dropped_inside(packet.seq)
            if self.trace:
                self.trace.instant(slot.node.name, "drop", time.monotonic(), packet.seq)

        return dropped

    def _emit(self, slot: _Slot, key: str, item) -> None:
        stream = slot.outputs.get(key)
        if stream is None:
            return
        for q in self._consumers.get(stream, ()):
            q.put(item)
        for target, _ in self._direct.get(stream, ()):
            self._deliver(target, item)

    def _deliver(self, slot: _Slot, item) -> None:
        """A fused node's input, in its producer's thread: fire it (or pass end-of-stream on). Its failure is
        its own, named as in its own thread; the producer then stops with the graph."""
        try:
            if item is EOS:
                self._emit_eos(slot)
            else:
                self._fire(slot, {next(iter(slot.inputs)): item})
        except _Fused:
            raise
        except BaseException as e:
            self._fail(slot, e)
            raise _Fused() from e

    def _emit_eos(self, slot: _Slot) -> None:
        for key in slot.outputs:
            self._emit(slot, key, EOS)

    def _run_source(self, slot: _Slot) -> None:
        node: SourceNode = slot.node
        seq = 0
        s = self.summary
        try:
            while not self._draining.is_set() and not self._abort.is_set():
                if self.max_frames is not None and s.frames_in >= self.max_frames:
                    self.stop("max frames")
                    break
                node.wait_turn()
                if self._draining.is_set() or self._abort.is_set():
                    break
                start = time.monotonic()
                try:
                    payload = node.read()
                except Retry:
                    continue
                if payload is None:
                    with self._lock:
                        self._stop_reason = self._stop_reason or "end of stream"
                    break
                ts = time.monotonic()
                s.frames_in += 1
                slot.stats.record(start, ts)
                if self.limiter.admit(seq):
                    s.frames_admitted += 1
                    slot.stats.packets_out += 1
                    if self.trace:
                        self.trace.span(node.name, "read", start, ts, seq)
                    for key in slot.outputs:
                        self._emit(slot, key, Packet(seq, ts, payload))
                elif self.trace:
                    self.trace.instant(node.name, "flow-limit drop", ts, seq)
                seq += 1
        except BaseException as e:
            self._fail(slot, e)
        finally:
            self._emit_eos(slot)

    def _run_node(self, slot: _Slot) -> None:
        node = slot.node
        keys = list(slot.inputs)
        pending: dict[str, collections.deque] = {k: collections.deque() for k in keys}
        ended: set[str] = set()
        optional = set(getattr(node, "optional_inputs", ()))
        try:
            while not self._abort.is_set():
                with slot.cond:  # take one item for every input that has nothing pending
                    while True:
                        got = False
                        for k in keys:
                            if not pending[k] and k not in ended:
                                item = slot.queues[k].pop_nowait()
                                if item is EOS:
                                    ended.add(k)
                                    got = True
                                elif item is not None:
                                    pending[k].append(item)
                                    got = True
                        if got or self._abort.is_set():
                            break
                        slot.cond.wait(0.1)
                if self._abort.is_set():
                    break
                self._join(slot, keys, pending, ended, optional)
                if all(k in ended for k in keys) and not any(pending.values()):
                    break
        except BaseException as e:
            self._fail(slot, e)
        finally:
            if not self._abort.is_set():
                self._emit_eos(slot)

    def _join(self, slot: _Slot, keys, pending, ended, optional) -> None:
        """Fire the node for every timestamp that all its inputs have; drop packets that can never match."""
        while True:
            heads = {k: pending[k][0] for k in keys if pending[k]}
            if len(heads) < len(keys):
                # an input that has ended can never deliver again: packets waiting for it are stranded
                if heads and any(k in ended and not pending[k] for k in keys):
                    for k in heads:
                        self._discard(slot, pending[k].popleft())
                    continue
                return
            newest = max(p.seq for p in heads.values())
            old = [k for k, p in heads.items() if p.seq < newest]
            if old:  # a stream moved past this timestamp without it (dropped upstream): skip it
                for k in old:
                    self._discard(slot, pending[k].popleft())
                continue
            packets = {k: pending[k].popleft() for k in keys}
            self._fire(slot, packets)

    def _discard(self, slot: _Slot, packet: Packet) -> None:
        slot.stats.dropped_in += 1
        if self.limiter:
            self.limiter.dropped_inside(packet.seq)

    def _fire(self, slot: _Slot, packets: dict[str, Packet]) -> None:
        node = slot.node
        first = next(iter(packets.values()))
        seq, ts = first.seq, first.ts
        optional = getattr(node, "optional_inputs", ())
        if any(p.empty and k not in optional for k, p in packets.items()):
            result = None  # a required input has nothing for this timestamp: pass the bound on
        else:
            start = time.monotonic()
            result = node.process({k: (None if p.empty else p.payload) for k, p in packets.items()},
                                  Packet(seq, ts, None))
            end = time.monotonic()
            slot.stats.record(start, end)
            if self.trace:
                self.trace.span(node.name, "process", start, end, seq)
        if result is None:
            outs = {}
        elif isinstance(result, dict) and len(node.outputs) > 1 and set(result) <= set(node.outputs):
            outs = result
        else:
            outs = {node.outputs[0]: result} if node.outputs else {}
        for key in slot.outputs:
            payload = outs.get(key, EMPTY)
            if payload is EMPTY or payload is None:
                slot.stats.empty_out += 1
                payload = EMPTY
            else:
                slot.stats.packets_out += 1
            self._emit(slot, key, Packet(seq, ts, payload))
        if slot.node.name in self._terminals:
            self._finished(slot, seq, ts)

    def _finished(self, slot: _Slot, seq: int, ts: float) -> None:
        with self._lock:
            n = self._finish_count.get(seq, 0) + 1
            if n < len(self._terminals):
                self._finish_count[seq] = n
                return
            self._finish_count.pop(seq, None)
            for old in [k for k in self._finish_count if k < seq]:
                del self._finish_count[old]
            self.summary.frame_done(time.monotonic(), ts)
        self.limiter.finished(seq)
