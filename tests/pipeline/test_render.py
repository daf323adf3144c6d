"""Annotate: boxes, keypoints and dense landmark sets land on the pixels they name; the input frame is kept."""
from __future__ import annotations

import numpy as np

from edgekit.pipeline.nodes.render import Annotate


def test_annotate_draws_boxes_keypoints_and_every_landmark():
    frame = np.zeros((120, 160, 3), np.uint8)
    rng = np.random.default_rng(1)
    landmarks = rng.integers(5, 115, (468, 2)).astype(float).tolist()
    keypoints = [[40.0, 50.0], [80.0, 50.0]]
    face = {"box": [20.0, 20.0, 140.0, 100.0], "score": 0.9, "keypoints": keypoints, "landmarks": landmarks}
    draw = Annotate("draw", point_color=(0, 0, 255), color=(0, 255, 0))
    out = draw.process({"frame": frame, "results": {"faces": [face]}}, None)
    assert not frame.any()  # the input frame is not drawn on
    assert tuple(out[20, 80]) == (0, 255, 0)  # the box's top edge
    for x, y in landmarks + keypoints:
        assert out[int(y), int(x), 2] > 100, (x, y)  # a dot at every point
    assert out[int(landmarks[0][1]), int(landmarks[0][0]), 1] == 0  # in the point colour, not the box's
