"""Far faces: the astronaut walking away (tools/make_sample_media.py far_face.avi, her face from ~90 to ~33 px).
BlazeFace full range (apps/face/full_range.yaml) finds her in the frames where short range (graph.yaml) has lost
her, every detection lies on the true face, and every backend agrees with ONNX Runtime."""
from __future__ import annotations

import json

import pytest

from edgekit.pipeline.nodes.face import DETECTORS
from tests.pipeline.apps.test_face import iou
from tests.pipeline.conftest import FACE_BACKENDS, FACE_FRAMES


def truth(samples) -> list[list[float]]:
    return json.loads(samples["far_face_truth"].read_text())["boxes"]


def test_full_range_finds_the_far_faces_short_range_misses(graph_run, samples):
    short = graph_run("face", "graph.yaml", "far_face", "onnx")
    full = graph_run("face", "full_range.yaml", "far_face", "onnx")
    assert short.error is None and full.error is None, short.error or full.error
    assert len(short.records) == len(full.records) == FACE_FRAMES
    boxes = truth(samples)
    for run in (short, full):
        for r in run.records:  # no false positives: whatever is found is on the face (BlazeFace's boxes of a
            for face in r["faces"]:  # 35 px face are a few px off, so the centre is checked, not the IoU)
                x0, y0, x1, y1 = boxes[r["seq"]]
                cx, cy = (face["box"][0] + face["box"][2]) / 2, (face["box"][1] + face["box"][3]) / 2
                assert x0 < cx < x1 and y0 < cy < y1, (r["seq"], face["box"], boxes[r["seq"]])
    found_short = [len(r["faces"]) == 1 for r in short.records]
    found_full = [len(r["faces"]) == 1 for r in full.records]
    only_full = [i for i in range(FACE_FRAMES) if found_full[i] and not found_short[i]]
    print(f"far faces: short range finds {sum(found_short)}/{FACE_FRAMES} frames, full range "
          f"{sum(found_full)}/{FACE_FRAMES}; only full range: frames {only_full}")
    assert found_short[0], "the near face at the start is for both models"
    assert not any(s and not f for s, f in zip(found_short, found_full)), "full range lost a face short range has"
    assert len(only_full) >= FACE_FRAMES // 3
    for i in only_full:  # the far faces get their mesh too
        face = full.records[i]["faces"][0]
        assert face["presence"] > 0.5 and len(face["landmarks"]) == 468


@pytest.mark.parametrize("backend", [b for b in FACE_BACKENDS if b != "onnx"])
def test_full_range_backend_matches_onnxruntime(graph_run, backend):
    """Same faces per frame as ONNX Runtime with box IoU >= 0.9; a frame may differ only where the detection
    score is within 0.05 of the model's threshold (a 1e-3 difference in a logit can cross it)."""
    ref = graph_run("face", "full_range.yaml", "far_face", "onnx")
    run = graph_run("face", "full_range.yaml", "far_face", backend)
    assert run.error is None, run.error
    assert len(run.records) == len(ref.records) == FACE_FRAMES
    near = DETECTORS["full_range"][1] + 0.05
    worst = 1.0
    for r, x in zip(ref.records, run.records):
        if len(r["faces"]) != len(x["faces"]):
            scores = [f["score"] for f in r["faces"] + x["faces"]]
            assert max(scores) < near, f"{backend} frame {x['seq']}: {len(x['faces'])} faces, ONNX Runtime " \
                                       f"{len(r['faces'])} (scores {scores})"
            continue
        for a, b in zip(r["faces"], x["faces"]):
            worst = min(worst, iou(a["box"], b["box"]))
    print(f"far faces {backend}: min IoU {worst:.4f}")
    assert worst >= 0.9
