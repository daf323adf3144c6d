"""The apps at int8: each model calibrated on what it is fed on the sample video's first frames (the OCR
classifier and recogniser on the fp32 detector's line crops, the face landmarker on its face crops), gated by
the task metric its graph names on the held-out frames, then the app's own result compared with fp32 on ONNX
Runtime: OCR character accuracy within 1 point, face boxes overlapping. Bad precisions and int8 without usable
calibration frames are one clear error.

On ONNX Runtime's static QDQ (the int8 reference, quick to quantize), and the face app on ncnn, where BlazeFace
misses the 1% budget at int8 (its firing boxes lose ~4% IoU, boxes@classificators>0): that node falls back to
fp16 and says why, the landmarker stays int8, and the refusal is cached for the next run.

Time here (2 shared cores): the OCR models at int8 ~2 min, the face models ~15 s (ncnn ~90 s); the FaceMesh
API reuses those exports from the cache."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.pipeline.apps.test_face import iou
from tests.pipeline.apps.test_ocr import accuracy
from tests.pipeline.conftest import APPS, FACE_FRAMES, OCR_FRAMES, run_app

_RUNS: dict = {}
REFUSED = r"at int8: .*(drop \d+\.\d+%|cosine \d)"  # a gate's refusal states the measured drop
_LOCK = threading.Lock()


@pytest.fixture(scope="session")
def int8_run(samples, pipeline_cache, tmp_path_factory):
    """int8_run("ocr", "onnx") -> AppRun of the app graph at --precision int8, once per session."""

    def get(app: str, backend: str):
        with _LOCK:
            if (app, backend) not in _RUNS:
                _RUNS[app, backend] = run_app(app, samples[app], backend,
                                              tmp_path_factory.mktemp(f"{app}_{backend}_int8"), pipeline_cache,
                                              precision="int8")
            return _RUNS[app, backend]

    return get


def _refused(run) -> None:
    """A model the int8 gate refuses is said naming the node, the model and the measured drop: then skip."""
    if run.error is not None:
        assert re.search(r"node '\w+': onnx cannot run \S+\.(onnx|tflite) at int8: .*(drop \d+\.\d+%|cosine \d)",
                         run.error), run.error
        pytest.skip(f"the int8 gate refused a model: {run.error[:300]}")


def test_ocr_int8_reads_like_fp32(int8_run, app_run, samples, pipeline_cache):
    ref, run = app_run("ocr", "onnx"), int8_run("ocr", "onnx")
    _refused(run)
    assert len(run.records) == OCR_FRAMES
    acc, ref_acc = accuracy(run, samples), accuracy(ref, samples)
    print(f"ocr onnx int8: character accuracy {acc:.2f}% (ONNX Runtime fp32 {ref_acc:.2f}%)")
    assert abs(acc - ref_acc) <= 1.0
    _check_gates(run, {"detector": "mask@0.3", "classifier": "top1", "recognizer": "ctc"})


def _check_gates(run, metrics: dict) -> None:
    """Each node at int8 passed its gate (the app's metric, within 1%, on held-out frames); a node not at int8 was
    refused with its measured drop and runs at the next precision. At least one node runs int8. `metrics`: node ->
    the metric its graph names (None: the default rule, cosine and error)."""
    models = {n["node"]: n["model"] for n in run.summary.nodes if n.get("model")}
    assert set(models) == set(metrics)
    for node, info in models.items():
        assert info["requested"] == "int8"
        if info["precision"] != "int8":
            assert re.search(REFUSED, info["refused"]["int8"]), info["refused"]
            continue
        m = json.loads((Path(info["path"]) / "edgekit.json").read_text())
        assert m["precision"]["requested"] == "int8" and m["precision"]["quantization"]["layers_int8"] > 0
        outs = m["verification"]["outputs"]
        assert all(o["passed"] for o in outs) and any(o["metric"] == metrics[node] for o in outs), outs
        for o in outs:
            if o["metric"]:
                assert o["drop"] == pytest.approx(1 - o["metric_value"]) and o["drop"] <= 0.01
        assert "held_out" in m["verification"]["inputs"]  # the gate ran on frames calibration never saw
    assert any(info["precision"] == "int8" for info in models.values()), models


def test_face_int8_finds_the_same_faces(int8_run, app_run):
    ref, run = app_run("face", "onnx"), int8_run("face", "onnx")
    _refused(run)
    assert len(run.records) == FACE_FRAMES
    worst = 1.0
    for r, x in zip(ref.records, run.records):
        assert len(x["faces"]) == len(r["faces"]) == 1, f"frame {x['seq']}: {len(x['faces'])} faces"
        worst = min(worst, iou(r["faces"][0]["box"], x["faces"][0]["box"]))
    print(f"face onnx int8: min box IoU {worst:.4f} against ONNX Runtime fp32")
    assert worst >= 0.9
    _check_gates(run, {"detector": "mask@0", "landmarker": None})


def test_face_int8_on_ncnn_runs_each_model_at_the_precision_its_gate_accepts(int8_run, app_run, samples,
                                                                           pipeline_cache, tmp_path):
    """--precision int8 on ncnn: a model its gate refuses at int8 runs at the next precision (fp16, then fp32),
    the summary says which precision each node got and why, and the next run reuses the refusal (no export)."""
    from edgekit.pipeline import Overrides, build

    run = int8_run("face", "ncnn")
    assert run.error is None, run.error
    models = {n["node"]: n["model"] for n in run.summary.nodes if n.get("model")}
    assert set(models) == {"detector", "landmarker"}
    for m in models.values():
        assert m["format"] == "ncnn" and m["requested"] == "int8"
        if m["precision"] == "int8":
            assert not m["refused"]
        else:  # refused at int8 with the measured drop, and run at the next precision
            assert m["precision"] in ("fp16", "fp32")
            assert re.search(REFUSED, m["refused"]["int8"]), m["refused"]
    refused = [m for m in models.values() if m["refused"]]
    assert ("refused by its gate" in run.summary.format()) == bool(refused)
    ref = app_run("face", "onnx")
    worst = 1.0
    for r, x in zip(ref.records, run.records):  # the same face in every frame
        assert len(x["faces"]) == len(r["faces"]) == 1
        worst = min(worst, iou(r["faces"][0]["box"], x["faces"][0]["box"]))
    # Held to the 0.9 of the fp32 backends since the detector is gated by its firing boxes' IoU (with the
    # regressor's cosine instead, an int8/fp16 BlazeFace whose boxes moved passed: worst IoU 0.886 then)
    print(f"face ncnn int8/fp16: min box IoU {worst:.4f} against ONNX Runtime fp32")
    assert worst >= 0.9
    logged = []
    o = Overrides(source=str(samples["face"]), sinks=[str(tmp_path / "again.avi")], backend="ncnn", precision="int8",
                  cache=str(pipeline_cache), options={"log.path": str(tmp_path / "again.jsonl")})
    p = build(APPS / "face" / "graph.yaml", o, log=logged.append)
    p.max_frames = 2
    p.run()
    assert not any("exporting" in m for m in logged), logged  # every artifact and refusal came from the cache
    assert len([m for m in logged if "refused in an earlier run" in m]) == len(refused)



def test_the_api_runs_int8_from_the_same_cache(int8_run, samples, pipeline_cache):
    """FaceMesh(precision="int8") calibrates on the same media with the same gate, so it opens the artifacts the
    pipeline exported (no new export) and finds the face the fp32 API finds."""
    from edgekit.apps import FaceMesh

    _refused(int8_run("face", "onnx"))
    cap = cv2.VideoCapture(str(samples["face"]))
    ok, frame = cap.read()
    cap.release()
    assert ok
    exported = {n["node"]: n["model"]["path"] for n in int8_run("face", "onnx").summary.nodes if n.get("model")}
    with FaceMesh(backend="onnx", cache=pipeline_cache) as fp32, \
            FaceMesh(backend="onnx", precision="int8", calib=samples["face"], cache=pipeline_cache) as int8:
        assert (str(int8.detector.path), str(int8.landmarker.path)) == (exported["detector"], exported["landmarker"])
        (a,), (b,) = fp32.process(frame), int8.process(frame)
        assert iou(list(a.box), list(b.box)) >= 0.9


def _video(path, frames):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for f in frames:
        w.write(f)
    w.release()
    return path


def test_bad_precision_and_unusable_calibration_are_clear(samples, pipeline_cache, tmp_path):
    from edgekit.apps import TextReader
    from edgekit.pipeline import Overrides, build

    graph = APPS / "ocr" / "graph.yaml"
    with pytest.raises(EdgekitError, match=r"--precision int4: use one of fp32, fp16, int8"):
        build(graph, Overrides(precision="int4"), log=lambda m: None)
    with pytest.raises(EdgekitError, match=r"node 'classifier': precision 'int4' is not one of fp32, fp16, int8"):
        build(graph, Overrides(source=str(samples["ocr"]), options={"classifier.precision": "int4"}),
              log=lambda m: None)
    with pytest.raises(EdgekitError, match=r"precision 'int4' is not one of"):
        TextReader(precision="int4", cache=pipeline_cache)
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "pipeline", str(graph), "--precision", "int4"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--precision int4: use one of fp32, fp16, int8" in proc.stderr, proc.stderr

    # int8 on the classifier alone (the detector at fp32 on ONNX Runtime): what it is fed comes from the detector
    def run(source, **extra):
        o = Overrides(source=str(source), sinks=[str(tmp_path / "o.avi")], backend="onnx", cache=str(tmp_path / "c"),
                      options={"log.path": str(tmp_path / "o.jsonl"), "classifier.precision": "int8"}, **extra)
        build(graph, o, log=lambda m: None).run()

    blank = _video(tmp_path / "blank.avi", [np.full((480, 640, 3), 255, np.uint8)] * 4)
    with pytest.raises(EdgekitError, match=r"int8: inference node 'classifier' was fed nothing on the 3 calibration "
                                           r"frame\(s\) of .*blank.avi \(the models upstream of it found nothing"):
        run(blank)
    one = _video(tmp_path / "one.avi", [np.full((480, 640, 3), 255, np.uint8)])
    with pytest.raises(EdgekitError, match=r"one.avi has 1 frame\(s\); it needs at least 2"):
        run(samples["ocr"], calib=str(one))
    with pytest.raises(EdgekitError, match=r"int8 needs calibration frames from sample media.*nothing.avi: no such "
                                           r"file or folder\); give --calib VIDEO\|FOLDER"):
        run(samples["ocr"], calib=str(tmp_path / "nothing.avi"))
    assert not list((tmp_path / "c").glob("*_int8-*"))  # nothing exported


def test_strict_precision_makes_a_refusal_an_error(samples, tmp_path):
    """A budget no int8 model meets (cosine within 1e-7): by default the node runs at the next precision the
    backend has and the summary says so; with --strict-precision (Overrides.strict_precision) the same
    refusal, now from the cache, is an error naming the node, and nothing is written."""
    from edgekit.pipeline import Overrides, build

    graph = APPS / "ocr" / "graph.yaml"
    opts = {"classifier.precision": "int8", "classifier.metric": "cosine", "classifier.max_drop": 1e-7}

    def overrides(tag, **extra):
        return Overrides(source=str(samples["ocr"]), sinks=[str(tmp_path / f"{tag}.avi")], backend="onnx",
                         cache=str(tmp_path / "c"), options={"log.path": str(tmp_path / f"{tag}.jsonl"), **opts},
                         **extra)

    p = build(graph, overrides("lenient"), log=lambda m: None)
    p.max_frames = 2
    summary = p.run()
    (cls,) = [n["model"] for n in summary.nodes if n["node"] == "classifier"]
    assert cls["requested"] == "int8" and cls["precision"] == "fp32" and re.search(REFUSED, cls["refused"]["int8"])
    with pytest.raises(EdgekitError, match=r"(?s)node 'classifier'.*at int8.*refused in an earlier run"):
        p = build(graph, overrides("strict", strict_precision=True), log=lambda m: None)
        p.max_frames = 2
        p.run()
    assert not (tmp_path / "strict.jsonl").exists() and not (tmp_path / "strict.avi").exists()
