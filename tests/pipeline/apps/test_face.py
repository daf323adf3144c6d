"""The face app on every backend against the same app on ONNX Runtime: the astronaut's face is found in every
frame, boxes overlap the reference with IoU >= 0.9 and all 468 landmarks are within 2 px."""
from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.conftest import FACE_BACKENDS, FACE_FRAMES


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_reference_finds_the_face_in_every_frame(app_run):
    ref = app_run("face", "onnx")
    assert ref.error is None, ref.error
    assert ref.summary.frames_processed == FACE_FRAMES and len(ref.records) == FACE_FRAMES
    assert [r["seq"] for r in ref.records] == list(range(FACE_FRAMES))  # in order, none lost
    for r in ref.records:
        assert len(r["faces"]) == 1, f"frame {r['seq']}: {len(r['faces'])} faces"
        face = r["faces"][0]
        assert face["score"] > 0.7 and face["presence"] > 0.9
        assert len(face["keypoints"]) == 6 and len(face["landmarks"]) == 468
        x0, y0, x1, y1 = face["box"]
        lm = np.array(face["landmarks"])
        # the mesh lies on the detected face (a 1.5x crop around the box)
        assert (x1 - x0) > 40 and np.all(lm[:, 0] > x0 - (x1 - x0)) and np.all(lm[:, 0] < x1 + (x1 - x0))
    import cv2

    cap = cv2.VideoCapture(str(ref.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FACE_FRAMES
    cap.release()


@pytest.mark.parametrize("backend", [b for b in FACE_BACKENDS if b != "onnx"])
def test_backend_matches_onnxruntime(app_run, backend):
    ref, run = app_run("face", "onnx"), app_run("face", backend)
    assert run.error is None, run.error
    assert len(run.records) == len(ref.records) == FACE_FRAMES
    worst_iou, worst_px = 1.0, 0.0
    for r, x in zip(ref.records, run.records):
        assert r["seq"] == x["seq"]
        assert len(x["faces"]) == len(r["faces"]) == 1, f"{backend} frame {x['seq']}: {len(x['faces'])} faces"
        worst_iou = min(worst_iou, iou(r["faces"][0]["box"], x["faces"][0]["box"]))
        d = np.abs(np.array(r["faces"][0]["landmarks"]) - np.array(x["faces"][0]["landmarks"]))
        worst_px = max(worst_px, float(d.max()))
    print(f"face {backend}: min IoU {worst_iou:.4f}, max landmark error {worst_px:.3f} px")
    assert worst_iou >= 0.9
    assert worst_px <= 2.0
