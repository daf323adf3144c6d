"""Graph semantics on real threads: end of stream, timestamps, joins over frames a node emitted nothing for,
a failing node, the flow limiter's latency bound, user nodes from YAML, Chrome traces, and no thread left."""
from __future__ import annotations

import json
import textwrap
import time

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.pipeline import Pipeline, PipelineError, build
from edgekit.pipeline.nodes.render import Annotate
from tests.pipeline import helpers as h


def test_end_of_stream_stops_cleanly_with_every_frame_in_order(no_new_threads):
    p = Pipeline(max_in_flight=3)
    p.add(h.Frames("src", count=25), outputs={"frame": "frames"})
    p.add(h.Sleep("work", ms=2), inputs={"in": "frames"}, outputs={"out": "done"})
    sink = p.add(h.Collect("sink"), inputs={"in": "done"})
    s = p.run()
    assert s.stopped_by == "end of stream"
    assert s.frames_in == s.frames_processed == 25 and s.frames_dropped == 0
    seqs = [i[0] for i in sink.items]
    ts = [i[1] for i in sink.items]
    assert seqs == list(range(25)) and all(a < b for a, b in zip(ts, ts[1:]))  # monotonic per stream
    assert [int(i[2][0, 0, 0]) for i in sink.items] == list(range(25))
    assert not p.threads()


def test_steady_state_rate_leaves_out_the_pipeline_fill():
    from edgekit.pipeline.stats import RunSummary

    s = RunSummary(seconds=1.0)
    for i in range(5):  # the first frame leaves after 0.6 s (filling the stages), then one every 0.1 s
        s.frame_done(now=0.6 + 0.1 * i, capture_ts=0.1 * i)
    assert s.fps == 5.0 and abs(s.steady_fps - 10.0) < 1e-9
    assert s.e2e_ms == pytest.approx([600.0] * 5)
    assert s.as_dict()["fps_steady"] == 10.0


def test_a_node_that_emits_nothing_does_not_stall_a_join(no_new_threads):
    p = Pipeline(max_in_flight=2)
    p.add(h.Frames("src", count=12), outputs={"frame": "frames"})
    p.add(h.SkipOdd("det"), inputs={"in": "frames"}, outputs={"out": "dets"})
    p.add(h.Pair("join"), inputs={"frame": "frames", "result": "dets"}, outputs={"out": "pairs"})
    p.add(Annotate("draw"), inputs={"frame": "frames", "results": "dets"}, outputs={"frame": "drawn"})
    pairs = p.add(h.Collect("pairs_sink"), inputs={"in": "pairs"})
    drawn = p.add(h.Collect("drawn_sink"), inputs={"in": "drawn"})
    s = p.run()
    assert s.frames_processed == 12
    got = [i[2] for i in pairs.items]
    assert [g["seq"] for g in got] == list(range(12))
    assert [g["value"] for g in got] == list(range(12))  # frame and result of the same timestamp
    assert [g["has_result"] for g in got] == [i % 2 == 0 for i in range(12)]
    assert len(drawn.items) == 12
    assert s.as_dict()["nodes"][1]["empty"] == 6


def test_a_failing_node_stops_the_graph_and_is_named(no_new_threads):
    p = Pipeline(max_in_flight=2)
    p.add(h.Frames("src", count=None, fps=200), outputs={"frame": "frames"})  # endless live source
    p.add(h.Fail("bad_node", at=5), inputs={"in": "frames"}, outputs={"out": "x"})
    p.add(h.Collect("sink"), inputs={"in": "x"})
    start = time.monotonic()
    with pytest.raises(PipelineError,
                       match=r"node 'bad_node' \(test_fail\) failed: ValueError: broken at frame 5") as e:
        p.run()
    assert e.value.node == "bad_node"
    assert time.monotonic() - start < 10
    assert not p.threads()


def test_main_thread_tasks_run_in_the_thread_that_runs_the_graph(no_new_threads):
    """GUI work (the window sink) must happen in the main thread under Qt and macOS: a node's task registered
    with on_main_thread is called from run()'s thread while frames flow; a task that raises stops the graph."""
    import threading

    class Shows(h.Collect):
        def open(self):
            self.calls = []
            self.graph.on_main_thread(self, lambda: self.calls.append((threading.current_thread(), len(self.items))))

    p = Pipeline()
    p.add(h.Frames("src", count=20, fps=100), outputs={"frame": "frames"})
    sink = p.add(Shows("sink"), inputs={"in": "frames"})
    p.run()
    assert sink.calls and {t for t, _ in sink.calls} == {threading.current_thread()}
    assert any(0 < n < 20 for _, n in sink.calls)  # called while the frames were flowing

    class Fails(h.Collect):
        def open(self):
            self.graph.on_main_thread(self, lambda: 1 / 0)

    p = Pipeline()
    p.add(h.Frames("src", count=1000, fps=100), outputs={"frame": "frames"})
    p.add(Fails("window"), inputs={"in": "frames"})
    with pytest.raises(PipelineError, match="node 'window'.*ZeroDivisionError"):
        p.run()
    assert not p.threads()


def test_close_without_run_and_twice_leaves_no_threads(no_new_threads):
    p = Pipeline()
    p.add(h.Frames("src", count=None, fps=100), outputs={"frame": "frames"})
    p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.start()
    time.sleep(0.2)
    p.close()
    p.close()
    assert not p.threads()


def test_flow_limiter_drops_frames_instead_of_building_latency(no_new_threads):
    """A 30 fps live source into a 60 ms stage: frames are dropped at the source and the end-to-end latency
    stays under 2x the processing time (unbounded queues would grow it without limit)."""
    p = Pipeline(max_in_flight=1)
    p.add(h.Frames("src", count=60, fps=30), outputs={"frame": "frames"})
    p.add(h.Sleep("slow", ms=60), inputs={"in": "frames"}, outputs={"out": "out"})
    p.add(h.Collect("sink"), inputs={"in": "out"})
    s = p.run()
    d = s.as_dict()
    assert s.frames_in == 60 and s.frames_dropped > 20
    assert d["e2e_latency_ms_median"] < 2 * 60, d


@pytest.mark.parametrize("fps, flow, want", [(None, "auto", ("block", 8)), (30, "auto", ("drop", 2)),
                                              (None, "block", ("block", 2)), (None, "drop", ("drop", 2))])
def test_files_get_more_frames_in_flight_than_live_sources(fps, flow, want, no_new_threads):
    """Under auto a file's frames all get processed, and its in-flight bound (memory, not latency) is raised so
    every stage has work; a live source keeps max_in_flight; an explicit mode keeps it too."""
    p = Pipeline(max_in_flight=2, flow=flow)
    p.add(h.Frames("src", count=3, fps=fps), outputs={"frame": "frames"})
    p.add(h.Collect("sink"), inputs={"in": "frames"})
    p.start()
    try:
        assert (p.limiter.mode, p.limiter.max_in_flight) == want
    finally:
        p.close()


def test_wiring_errors_are_clear():
    p = Pipeline()
    p.add(h.Frames("src"), outputs={"frame": "frames"})
    with pytest.raises(EdgekitError, match="has no input 'image'"):
        p.add(h.Collect("sink"), inputs={"image": "frames"})
    p.add(h.Collect("sink"), inputs={"in": "nowhere"})
    with pytest.raises(EdgekitError, match="no node produces stream 'nowhere'"):
        p.start()


def test_user_node_from_yaml_and_chrome_trace(tmp_path, no_new_threads):
    (tmp_path / "my_nodes.py").write_text(textwrap.dedent('''
        from edgekit.pipeline import Node, register

        @register("mean_brightness")
        class MeanBrightness(Node):
            inputs, outputs = ("frame",), ("value",)
            def process(self, inputs, packet):
                return {"mean": float(inputs["frame"].mean())}
    '''))
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    for i in range(5):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((16, 16, 3), 10 * i, np.uint8))
    (tmp_path / "g.yaml").write_text(textwrap.dedent(f'''
        name: brightness
        imports: [my_nodes.py]
        nodes:
          - {{name: source, type: source, uri: "{frames}/*.png", output: frames}}
          - {{name: measure, type: mean_brightness, input: {{stream: frames, policy: drop-oldest, size: 8}}, output: v}}
          - {{name: log, type: jsonl_sink, path: "{tmp_path / 'out.jsonl'}", input: v}}
    '''))
    from edgekit.pipeline import Overrides

    s = build(tmp_path / "g.yaml", Overrides(trace=str(tmp_path / "trace.json"))).run()
    assert s.frames_processed == 5
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["mean"] for r in rows] == [0.0, 10.0, 20.0, 30.0, 40.0]
    trace = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    spans = [e for e in trace if e["ph"] == "X"]
    assert {e["name"] for e in spans} == {"read", "process"}
    assert {e["args"]["seq"] for e in spans} == set(range(5))
    names = {e["args"]["name"] for e in trace if e["ph"] == "M"}
    assert names == {"source", "measure", "log"}


def test_unknown_node_type_lists_the_known_ones(tmp_path):
    (tmp_path / "g.yaml").write_text("nodes:\n  - {name: a, type: nosuch}\n")
    with pytest.raises(EdgekitError, match="unknown node type 'nosuch'.*inference"):
        build(tmp_path / "g.yaml")


def test_run_inline_matches_the_threaded_run(no_new_threads):
    def graph():
        p = Pipeline()
        p.add(h.Frames("src", count=8), outputs={"frame": "frames"})
        p.add(h.SkipOdd("det"), inputs={"in": "frames"}, outputs={"out": "dets"})
        p.add(h.Pair("join"), inputs={"frame": "frames", "result": "dets"}, outputs={"out": "pairs"})
        return p, p.add(h.Collect("sink"), inputs={"in": "pairs"})

    p1, s1 = graph()
    p1.run()
    p2, s2 = graph()
    summary = p2.run_inline()
    assert summary.frames_processed == 8 and not p2.threads()
    assert [i[2] for i in s1.items] == [i[2] for i in s2.items]


def test_stages_run_concurrently(no_new_threads):
    """Three 20 ms stages that wait (as a runtime on an accelerator or a camera read does): the threaded graph
    overlaps them (~20 ms per frame), the inline loop cannot (~60 ms per frame)."""
    def graph():
        p = Pipeline(max_in_flight=4)
        p.add(h.Frames("src", count=30), outputs={"frame": "f"})
        p.add(h.Sleep("a", ms=20), inputs={"in": "f"}, outputs={"out": "a"})
        p.add(h.Sleep("b", ms=20), inputs={"in": "a"}, outputs={"out": "b"})
        p.add(h.Sleep("c", ms=20), inputs={"in": "b"}, outputs={"out": "c"})
        p.add(h.Collect("sink"), inputs={"in": "c"})
        return p

    threaded = graph().run()
    inline = graph().run_inline()
    assert threaded.frames_processed == inline.frames_processed == 30
    assert threaded.fps > 2.0 * inline.fps, (threaded.fps, inline.fps)


class _Thread(h.Collect):
    """A light sink that records the thread each frame ran in."""

    light = True

    def process(self, inputs, packet):
        import threading

        super().process(inputs, packet)
        self.items[-1] = (*self.items[-1], threading.current_thread().name)


class _LightFail(h.Fail):
    light = True


@pytest.mark.parametrize("fuse", [True, False])
def test_light_nodes_run_in_their_producers_thread_with_the_same_semantics(fuse, no_new_threads):
    p = Pipeline(max_in_flight=3, fuse_light=fuse)
    p.add(h.Frames("src", count=20), outputs={"frame": "frames"})
    p.add(h.Sleep("work", ms=1), inputs={"in": "frames"}, outputs={"out": "done"})
    right = p.add(_Thread("right_after_source"), inputs={"in": "frames"})  # a source keeps its thread
    sink = p.add(_Thread("sink"), inputs={"in": "done"})
    s = p.run()
    assert s.frames_processed == 20 and s.stopped_by == "end of stream"
    assert [i[0] for i in sink.items] == list(range(20))
    assert {i[-1] for i in sink.items} == {"edgekit-work" if fuse else "edgekit-sink"}
    assert {i[-1] for i in right.items} == {"edgekit-right_after_source"}
    assert {n["node"]: n["in"] for n in s.nodes}["sink"] == 20  # its statistics as in a thread of its own
    assert not p.threads()


def test_a_fused_node_that_fails_is_named(no_new_threads):
    p = Pipeline(max_in_flight=2)
    p.add(h.Frames("src", count=None, fps=200), outputs={"frame": "frames"})
    p.add(h.Sleep("work", ms=1), inputs={"in": "frames"}, outputs={"out": "done"})
    p.add(_LightFail("bad_node", at=5), inputs={"in": "done"}, outputs={"out": "x"})
    p.add(h.Collect("sink"), inputs={"in": "x"})
    with pytest.raises(PipelineError, match=r"node 'bad_node' \(test_fail\) failed: ValueError: broken at frame 5"):
        p.run()
    assert not p.threads()


def test_a_dropping_edge_keeps_its_queue(no_new_threads):
    p = Pipeline(max_in_flight=8)
    p.add(h.Frames("src", count=10), outputs={"frame": "frames"})
    p.add(h.Sleep("work", ms=1), inputs={"in": "frames"}, outputs={"out": "done"})
    sink = p.add(_Thread("sink"), inputs={"in": {"stream": "done", "policy": "keep-latest"}})
    p.run()
    assert {i[-1] for i in sink.items} == {"edgekit-sink"}
