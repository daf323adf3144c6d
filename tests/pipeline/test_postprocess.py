"""Postprocessing nodes against the upstream code they follow (rapidocr's DB postprocess and CTC decode, on the
same real model outputs), and the preprocessing geometry that maps results back to the frame."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.manifest import Preprocessing, TensorSpec
from edgekit.pipeline import imageops
from edgekit.pipeline.nodes import face, ocr


@pytest.fixture(scope="module")
def page():
    from edgekit.fixtures import render_text_page

    return np.ascontiguousarray(render_text_page(width=640, height=480)[..., ::-1])  # BGR


@pytest.fixture(scope="module")
def det_prob(page):
    import onnxruntime as ort

    from edgekit.fixtures import OCR_MODELS

    spec = TensorSpec("x", "float32", [1, 3, 480, 640])
    x, _ = imageops.prepare(page, spec, Preprocessing(color="bgr", mean=[0.5] * 3, std=[0.5] * 3))
    sess = ort.InferenceSession(str(OCR_MODELS["ppocr-det"].path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_db_boxes_match_rapidocr(det_prob):
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

    ref_boxes, ref_scores = DBPostProcess(thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, use_dilation=True)(
        det_prob, (480, 640))
    ours = ocr.db_boxes(det_prob[0, 0], thresh=0.3, box_thresh=0.5, unclip_ratio=1.6)
    assert len(ours) == len(ref_boxes) >= 5
    key = lambda b: (float(np.min(b[:, 1])), float(np.min(b[:, 0])))  # noqa: E731
    ref = sorted((np.asarray(b, np.float64) for b in ref_boxes), key=key)
    got = sorted((np.clip(np.round(b), 0, [640, 480]) for b, _ in ours), key=key)
    for a, b in zip(ref, got):
        assert np.abs(a - b).max() <= 1.0
    assert sorted(s for _, s in ours) == pytest.approx(sorted(ref_scores), abs=1e-6)


def test_ctc_decode_matches_rapidocr():
    from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

    from edgekit.fixtures import OCR_MODELS

    chars = ocr.load_dictionary(OCR_MODELS["ppocr-rec"].path)
    ref = CTCLabelDecode(character=chars[1:-1])
    rng = np.random.default_rng(0)
    probs = rng.random((3, 60, len(chars))).astype(np.float32)
    probs[:, ::3, 0] += 2.0  # blanks between characters, like a real line
    for i, (text, score) in enumerate(ref(probs)):
        got_text, got_score = ocr.ctc_decode(probs[i], chars)
        assert got_text == text and got_score == pytest.approx(score, rel=1e-6)


def test_blazeface_anchors():
    anchors = face.ssd_anchors(**face.SHORT_RANGE)
    assert anchors.shape == (896, 2)  # 16x16x2 + 8x8x6, the model's 896 boxes
    assert anchors.min() > 0 and anchors.max() < 1


def test_weighted_nms_merges_a_cluster():
    boxes = np.array([[[0.1, 0.1], [0.3, 0.3]], [[0.12, 0.1], [0.32, 0.3]], [[0.6, 0.6], [0.8, 0.8]]])
    out = face.weighted_nms(boxes, np.array([0.9, 0.6, 0.8]), 0.3)
    assert len(out) == 2
    merged, score = out[0]
    assert score == 0.9 and merged[0, 0] == pytest.approx((0.1 * 0.9 + 0.12 * 0.6) / 1.5)


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_transform_maps_model_coordinates_back_to_the_frame(resize):
    frame = np.zeros((480, 640, 3), np.uint8)
    spec = TensorSpec("input", "float32", [1, 128, 128, 3])
    x, t = imageops.prepare(frame, spec, Preprocessing(resize=resize, layout="NHWC"))
    assert x.shape == (1, 128, 128, 3)
    pts = np.array([[0.0, 0.0], [640.0, 480.0], [320.0, 100.0]])
    model_px = np.stack([pts[:, 0] * t.sx + t.tx, pts[:, 1] * t.sy + t.ty], -1)
    assert np.allclose(t.to_frame(model_px), pts)
    if resize == "letterbox":
        assert t.sx == t.sy and t.ty == 16.0  # 640x480 into 128x128: 128x96, 16 px bars


def test_text_line_resize_is_paddleocr_s():
    """Full height, width by aspect ratio, zero padding after normalisation (rapidocr's resize_norm_img)."""
    line = np.full((30, 60, 3), 255, np.uint8)
    spec = TensorSpec("x", "float32", [1, 3, 48, 192])
    x, t = imageops.prepare(line, spec, Preprocessing(color="bgr", mean=[0.5] * 3, std=[0.5] * 3,
                                                      resize="keep-ratio-pad-right"))
    assert x.shape == (1, 3, 48, 192) and t.sy == 48 / 30
    assert np.all(x[0, :, :, :96] == 1.0)  # white, scaled to [-1, 1]
    assert np.all(x[0, :, :, 96:] == 0.0)  # padding is 0 after normalisation


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "keep-ratio-pad-right"])
def test_rgb_models_get_rgb_whatever_the_resize(resize):
    """The colour swap happens after the resize (cheaper); the tensor must be the one a swap before gives."""
    import cv2

    frame = np.random.default_rng(0).integers(0, 256, (120, 200, 3), np.uint8)
    spec = TensorSpec("x", "float32", [1, 3, 48, 96])
    rgb, _ = imageops.prepare(frame, spec, Preprocessing(color="rgb", resize=resize))
    ref, _ = imageops.prepare(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), spec,
                              Preprocessing(color="bgr", resize=resize))
    assert np.array_equal(rgb, ref)
    bgr, _ = imageops.prepare(frame, spec, Preprocessing(color="bgr", resize=resize))
    assert not np.array_equal(rgb, bgr)
