"""edgekit.apps, the Python API: FaceMesh and TextReader give what the app graphs give, frame for frame, on
every backend (they run the graphs' own nodes' code on the same exported models), and refuse bad options."""
from __future__ import annotations

import re

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from tests.pipeline.apps.test_ocr import OCR_V6_BACKENDS
from tests.pipeline.conftest import FACE_BACKENDS, OCR_BACKENDS

FRAMES = 6  # of each sample video: the graphs' runs already cover them all


def frames(video, count=FRAMES) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(video))
    out = []
    while len(out) < count:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def same_faces(api_faces, records_faces):
    assert len(api_faces) == len(records_faces)
    for a, r in zip(api_faces, records_faces):
        assert np.allclose(a.box, r["box"], atol=1e-6) and a.score == pytest.approx(r["score"], abs=1e-9)
        assert np.allclose(a.keypoints, r["keypoints"], atol=1e-3)
        assert a.landmarks.shape == (468, 2) and np.allclose(a.landmarks, r["landmarks"], atol=1e-3)


@pytest.mark.parametrize("backend", FACE_BACKENDS)
def test_facemesh_is_the_face_graph(app_run, samples, pipeline_cache, backend):
    from edgekit.apps import FaceMesh

    graph = app_run("face", backend)
    assert graph.error is None, graph.error
    with FaceMesh(backend=backend, cache=pipeline_cache) as mesh:
        for frame, rec in zip(frames(samples["face"]), graph.records):
            same_faces(mesh.process(frame), rec["faces"])


@pytest.mark.parametrize("backend", ["onnx", "ncnn"])
def test_facemesh_full_range_is_the_full_range_graph(graph_run, samples, pipeline_cache, backend):
    from edgekit.apps import FaceMesh

    graph = graph_run("face", "full_range.yaml", "far_face", backend)
    assert graph.error is None, graph.error
    mesh = FaceMesh(backend=backend, detector="full", cache=pipeline_cache)
    seen = 0
    for frame, rec in list(zip(frames(samples["far_face"], 100), graph.records))[::4]:
        faces = mesh.process(frame)
        same_faces(faces, rec["faces"])
        seen += len(faces)
    mesh.close()
    assert seen >= 3


def same_lines(api_lines, records_lines):
    assert [ln.text for ln in api_lines] == [r["text"] for r in records_lines]
    for a, r in zip(api_lines, records_lines):
        assert a.box.shape == (4, 2) and np.array_equal(a.box, np.asarray(r["box"], np.float32))
        assert a.score == r["score"] and a.angle == r["angle"]


@pytest.mark.parametrize("version,backend", [("v4", b) for b in OCR_BACKENDS] + [("v6", b) for b in OCR_V6_BACKENDS])
def test_textreader_is_the_ocr_graph(app_run, graph_run, samples, pipeline_cache, version, backend):
    from edgekit.apps import TextReader

    graph = app_run("ocr", backend) if version == "v4" else graph_run("ocr", "v6.yaml", "ocr", backend)
    assert graph.error is None, graph.error
    with TextReader(backend=backend, version=version, cache=pipeline_cache) as reader:
        for frame, rec in zip(frames(samples["ocr"], 2), graph.records):
            lines = reader.process(frame)
            assert len(lines) >= 5
            same_lines(lines, rec["lines"])


def test_textreader_runs_a_given_artifact_in_a_node(app_run, samples, pipeline_cache):
    """artifacts={"recognizer": folder}: that node runs the artifact (here MNN's) and the other two the backend's
    (ONNX Runtime), reading what the ONNX Runtime graph reads."""
    from edgekit.apps import TextReader

    graph = app_run("ocr", "onnx")
    assert graph.error is None, graph.error
    with TextReader(backend="mnn", cache=pipeline_cache) as mnn:
        rec = mnn.recognizer.path
    with TextReader(backend="onnx", cache=pipeline_cache, artifacts={"recognizer": rec}) as reader:
        assert reader.recognizer.path == rec and reader.detector.path.suffix == ".onnx"
        for frame, want in zip(frames(samples["ocr"], 2), graph.records):
            assert [ln.text for ln in reader.process(frame)] == [r["text"] for r in want["lines"]]


@pytest.mark.parametrize("api,options,message", [
    ("FaceMesh", {"backend": "coreml"}, "unknown backend 'coreml'; use one of: "),
    ("FaceMesh", {"detector": "medium"}, "detector must be one of 'short', 'full', not 'medium'"),
    ("TextReader", {"version": "v5"}, "version must be one of 'v4', 'v6', not 'v5'"),
    ("TextReader", {"backend": "tensorrt"}, "unknown backend 'tensorrt'"),
    ("TextReader", {"artifacts": {"reader": "x"}}, "artifacts: no model node reader; the nodes: detector, "),
])
def test_bad_options_are_refused_in_one_line_before_any_export(api, options, message, tmp_path):
    import edgekit.apps

    with pytest.raises(EdgekitError) as e:
        getattr(edgekit.apps, api)(cache=tmp_path, **options)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())  # nothing exported


def test_a_frame_that_is_not_a_bgr_image_is_refused(pipeline_cache):
    from edgekit.apps import FaceMesh

    mesh = FaceMesh(cache=pipeline_cache)
    for bad, what in ((np.zeros((48, 64), np.uint8), "uint8 (48, 64)"), (np.zeros((4, 4, 3)), "float64 (4, 4, 3)"),
                      ("photo.jpg", "str")):
        with pytest.raises(EdgekitError, match=r"process\(\) takes a BGR frame: a uint8 array of shape \(H, W, 3\), "
                                               rf"not {re.escape(what)}"):
            mesh.process(bad)
    assert mesh.process(np.full((480, 640, 3), 128, np.uint8)) == []  # a blank frame: no face, no error
    mesh.close()
