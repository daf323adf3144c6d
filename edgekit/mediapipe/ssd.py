"""Raw SSD heads for MediaPipe's ObjectDetector: how their boxes are coded (anchors, coordinate order, scales),
as the DETECTOR_METADATA MediaPipe decodes them with, and the same decoding in numpy for the export's check.

A detector without NMS in the model (boxes [1, A, 4 + 2K] and scores [1, A, C], BlazeFace/BlazePose-style or a
TF Object Detection SSD) is decoded by MediaPipe's TensorsToDetectionsCalculator with the options in the
model's custom metadata (mediapipe/tasks/cc/components/processors/detection_postprocessing_graph.cc,
ConfigureOutModelNmsTensorsToDetectionsCalculator): fixed anchors, x/y/w/h scales, optional exp on the box
size, optional sigmoid on the scores, then non-max suppression (IoU, DEFAULT algorithm, the task's
min_suppression_threshold). Its box format is fixed to YXHW there, with keypoints read (y, x) too
(tensors_to_detections_calculator.cc, DecodeBoxes); a model that writes XYWH (every MediaPipe BlazeFace
model) gets a Gather that reorders its coordinates in front of the output, so MediaPipe does not read x as y.

`--anchors` names the coding: `short_range` / `full_range` (BlazeFace's SSD anchors, as the face pipeline
generates them: x/y/w/h offsets in input pixels, no exp, sigmoid scores), or a JSON file:

    {"anchors": [[x_center, y_center, w, h], ...] or [[x_center, y_center], ...] or "anchors.npy",
     "box_format": "xywh" | "yxhw",   "scale": S or [x, y, w, h],
     "exp_box_size": false,           "sigmoid_score": true,        "min_score": 0.5}

with anchors normalised to the input (w = h = 1 when the anchors have no size: offsets are then in units of
`scale`), a .npy path relative to the JSON file, and defaults as shown (`scale` defaults to the input size)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import EdgekitError

FORMATS = ("xywh", "yxhw")


@dataclasses.dataclass
class BoxCoding:
    anchors: np.ndarray  # (A, 4): x_center, y_center, w, h, normalised to the input
    box_format: str  # the model's own coordinate order, "xywh" or "yxhw"
    scale: tuple  # x, y, w, h
    exp_box_size: bool
    sigmoid_score: bool
    min_score: float
    source: str  # the preset's name or the JSON file

    def describe(self) -> dict:
        """For the manifest (the anchors by count; they are in the model's metadata)."""
        return {"anchors": int(len(self.anchors)), "from": self.source, "box_format": self.box_format,
                "scale": [float(v) for v in self.scale], "exp_box_size": self.exp_box_size,
                "sigmoid_score": self.sigmoid_score, "min_score": self.min_score}


def load_coding(spec: str, hw: tuple[int, int]) -> BoxCoding:
    """`--anchors` (a preset name or a JSON file) for a model input of height x width `hw`."""
    from ..options import spell
    from ..pipeline.nodes.face import DETECTORS as table
    from ..pipeline.nodes.face import ssd_anchors

    h, w = hw
    if spec in table:
        options, min_score = table[spec]
        if (h, w) != (options["input_size"],) * 2:
            raise EdgekitError(f"{spell('anchors', spec)}: BlazeFace's {spec} anchors are for a "
                               f"{options['input_size']}x{options['input_size']} input; this model takes {h}x{w}")
        centres = ssd_anchors(**options)
        anchors = np.concatenate([centres, np.ones_like(centres)], axis=1)
        return BoxCoding(anchors, "xywh", (w, h, w, h), False, True, min_score, spec)
    path = Path(spec)
    if path.suffix.lower() != ".json" or not path.is_file():
        raise EdgekitError(f"{spell('anchors', spec)}: neither {' nor '.join(table)} nor a JSON file of anchors "
                           "and box coding (see edgekit/mediapipe/ssd.py)")
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgekitError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(d, dict) or "anchors" not in d:
        raise EdgekitError(f"{path}: needs an \"anchors\" key (a list of [x_center, y_center(, w, h)] or a .npy)")
    unknown = sorted(set(d) - {"anchors", "box_format", "scale", "exp_box_size", "sigmoid_score", "min_score"})
    if unknown:
        raise EdgekitError(f"{path}: unknown key(s) {', '.join(unknown)}")
    raw = d["anchors"]
    try:
        anchors = np.load(path.parent / raw) if isinstance(raw, str) else np.asarray(raw, np.float64)
    except (OSError, ValueError) as e:
        raise EdgekitError(f"{path}: cannot read its anchors {raw!r} ({e})") from None
    anchors = np.asarray(anchors, np.float64)
    if anchors.ndim != 2 or anchors.shape[1] not in (2, 4) or not len(anchors) or not np.isfinite(anchors).all():
        raise EdgekitError(f"{path}: anchors must be a non-empty (A, 2) or (A, 4) array of finite numbers; got "
                           f"shape {list(anchors.shape)}")
    if anchors.shape[1] == 2:
        anchors = np.concatenate([anchors, np.ones_like(anchors)], axis=1)
    fmt = d.get("box_format", "xywh")
    if fmt not in FORMATS:
        raise EdgekitError(f"{path}: box_format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    scale = d.get("scale", [w, h, w, h])
    scale = [scale] * 4 if isinstance(scale, (int, float)) else scale
    if (not isinstance(scale, list) or len(scale) != 4 or
            not all(isinstance(v, (int, float)) and v > 0 for v in scale)):
        raise EdgekitError(f"{path}: scale must be a positive number or four ([x, y, w, h]), not {d['scale']!r}")
    flags = {k: d.get(k, default) for k, default in (("exp_box_size", False), ("sigmoid_score", True))}
    if any(not isinstance(v, bool) for v in flags.values()):
        raise EdgekitError(f"{path}: exp_box_size and sigmoid_score are true or false")
    min_score = d.get("min_score", 0.5)
    if not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
        raise EdgekitError(f"{path}: min_score must be between 0 and 1, not {min_score!r}")
    return BoxCoding(anchors.astype(np.float32), fmt, tuple(float(v) for v in scale), flags["exp_box_size"],
                     flags["sigmoid_score"], float(min_score), str(path))


def yxhw_order(coords: int, box_format: str) -> list[int] | None:
    """The Gather index that turns a box row of `coords` values into MediaPipe's YXHW order (keypoints (y, x)),
    or None when the model already writes it."""
    if box_format == "yxhw":
        return None
    return [1, 0, 3, 2] + [i + (1 if (i - 4) % 2 == 0 else -1) for i in range(4, coords)]


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, coding: BoxCoding, min_score: float):
    """YXHW raw outputs (as MediaPipe reads them) -> (boxes (K, 4) xmin, ymin, xmax, ymax, keypoints (K, P, 2)
    x, y, scores (K,), classes (K,)), normalised to the input: tensors_to_detections_calculator's arithmetic."""
    a = coding.anchors.astype(np.float64)
    n = len(a)
    rows = raw_boxes.reshape(n, -1).astype(np.float64)
    logits = raw_scores.reshape(n, -1).astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80))) if coding.sigmoid_score else logits
    classes = np.argmax(scores, axis=1)
    best = scores[np.arange(n), classes]
    keep = ~(best < min_score)
    rows, a, best, classes = rows[keep], a[keep], best[keep], classes[keep]
    sx, sy, sw, sh = coding.scale
    yc = rows[:, 0] / sy * a[:, 3] + a[:, 1]
    xc = rows[:, 1] / sx * a[:, 2] + a[:, 0]
    if coding.exp_box_size:
        hh, ww = np.exp(rows[:, 2] / sh) * a[:, 3], np.exp(rows[:, 3] / sw) * a[:, 2]
    else:
        hh, ww = rows[:, 2] / sh * a[:, 3], rows[:, 3] / sw * a[:, 2]
    boxes = np.stack([xc - ww / 2, yc - hh / 2, xc + ww / 2, yc + hh / 2], axis=1)
    kp = rows[:, 4:4 + 2 * ((rows.shape[1] - 4) // 2)].reshape(len(rows), -1, 2)
    points = np.stack([kp[..., 1] / sx * a[:, None, 2] + a[:, None, 0],
                       kp[..., 0] / sy * a[:, None, 3] + a[:, None, 1]], axis=-1)
    return boxes, points, best, classes


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """MediaPipe's DEFAULT (hard) non-max suppression by IoU: best first, dropping any box that overlaps a kept
    one by more than `threshold`."""
    from . import box_iou

    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(box_iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(int(i))
    return kept
