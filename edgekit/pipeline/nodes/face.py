"""MediaPipe face pipeline nodes: BlazeFace SSD anchor decoding with weighted NMS, the rotated face crop for
the landmark model, and landmark projection back to the frame.

The algorithms follow MediaPipe's calculators (ssd_anchors_calculator, tensors_to_detections_calculator,
non_max_suppression_calculator in WEIGHTED mode, detection_letterbox_removal, rect_transformation,
landmark_projection), as ported to Python by fdlite (face-detection-tflite)."""
from __future__ import annotations

import math

import numpy as np

from ...errors import EdgekitError
from ..node import Node, register

# mediapipe/modules/face_detection/face_detection_short_range_common.pbtxt
SHORT_RANGE = dict(num_layers=4, input_size=128, anchor_offset=0.5, strides=[8, 16, 16, 16],
                   interpolated_scale_aspect_ratio=1.0)
FULL_RANGE = dict(num_layers=1, input_size=192, anchor_offset=0.5, strides=[4], interpolated_scale_aspect_ratio=0.0)
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips at 100; 80 keeps float32 sigmoid finite
KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear_tragion", "left_ear_tragion"]


def ssd_anchors(num_layers, input_size, anchor_offset, strides, interpolated_scale_aspect_ratio) -> np.ndarray:
    """(N, 2) anchor centres, normalised (all BlazeFace anchors have size 1x1 with fixed_anchor_size)."""
    anchors, layer = [], 0
    while layer < num_layers:
        last, repeats = layer, 0
        while last < num_layers and strides[last] == strides[layer]:
            last += 1
            repeats += 2 if interpolated_scale_aspect_ratio == 1.0 else 1
        fm = input_size // strides[layer]
        for y in range(fm):
            for x in range(fm):
                anchors += [((x + anchor_offset) / fm, (y + anchor_offset) / fm)] * repeats
        layer = last
    return np.asarray(anchors, np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw SSD outputs -> (boxes (K, 2 + P, 2) as [[xmin, ymin], [xmax, ymax], keypoints...], scores (K,)),
    normalised to the model input, only those above min_score with a positive size. The sigmoid is monotonic:
    the anchors are cut on the raw logits first (a hair below the threshold), so only the few near a face are
    exponentiated and decoded, and the exact score > min_score test runs on those."""
    n = anchors.shape[0]
    raw = raw_scores.reshape(n)
    idx = np.flatnonzero(raw > _logit_cut(min_score))
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw[idx].astype(np.float64), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    hit = scores > min_score
    idx, scores = idx[hit], scores[hit]
    pts = raw_boxes.reshape(n, -1, 2)[idx].astype(np.float64) / input_size
    pts[:, 0] += anchors[idx]
    pts[:, 2:] += anchors[idx, None, :]
    center, half = pts[:, 0].copy(), pts[:, 1] / 2
    pts[:, 0], pts[:, 1] = center - half, center + half
    keep = np.all(pts[:, 1] > pts[:, 0], axis=1)
    return pts[keep], scores[keep]


def _logit_cut(p: float) -> float:
    """A raw score below which sigmoid(raw) <= p for sure (a margin under logit(p) for rounding)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return RAW_SCORE_LIMIT - 1e-3
    return math.log(p / (1.0 - p)) - 1e-6


def _iou_matrix(b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes b (K, 2, 2)."""
    lo = np.maximum(b[:, None, 0], b[None, :, 0])
    hi = np.minimum(b[:, None, 1], b[None, :, 1])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = np.prod(np.clip(b[:, 1] - b[:, 0], 0, None), axis=-1)
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster of overlapping detections (IoU > threshold with
    the best one) becomes their score-weighted mean, with the best one's score. The pairwise IoUs are computed
    once (the few candidates a frame has), the clusters then taken best first."""
    if len(scores) == 0:
        return []
    order = np.argsort(-scores, kind="stable")
    b, s = boxes[order], scores[order]
    ious = _iou_matrix(b[:, :2])
    alive = np.ones(len(s), bool)
    out = []
    while alive.any():
        idx = np.flatnonzero(alive)
        best = idx[0]
        cluster = idx[ious[best, idx] > threshold]
        if not cluster.size:  # a degenerate box overlaps not even itself
            out.append((b[best], float(s[best])))
            break
        w = s[cluster]
        out.append(((b[cluster] * w[:, None, None]).sum(0) / w.sum(), float(s[best])))
        alive[cluster] = False
    return out


# The MediaPipe graph each detector comes from sets its anchors and its score threshold.
DETECTORS = {"short_range": (SHORT_RANGE, 0.5),  # face_detection_short_range_common.pbtxt: min_score_thresh 0.5
             "full_range": (FULL_RANGE, 0.6)}    # face_detection_full_range_common.pbtxt: min_score_thresh 0.6


class FaceDecoder:
    """BlazeFace raw outputs + the letterbox transform -> faces in frame pixels, as MediaPipe decodes them.
    The face_detections node and edgekit.apps.FaceMesh both call it, so the graph and the API agree."""

    def __init__(self, model: str = "short_range", min_score: float | None = None, nms_threshold: float = 0.3,
                 max_faces: int = 0, boxes_output: str | None = None, scores_output: str | None = None):
        if model not in DETECTORS:
            raise EdgekitError(f"face detector model must be one of {', '.join(DETECTORS)}, not {model!r}")
        self.model = model
        self.opts, default_score = DETECTORS[model]
        self.anchors = ssd_anchors(**self.opts)
        self.min_score = default_score if min_score is None else float(min_score)
        self.nms_threshold, self.max_faces = float(nms_threshold), int(max_faces)
        self.boxes_output, self.scores_output = boxes_output, scores_output

    def _outputs(self, outs: dict) -> tuple[np.ndarray, np.ndarray]:
        if self.boxes_output and self.scores_output:
            return outs[self.boxes_output], outs[self.scores_output]
        by_width = sorted(outs.values(), key=lambda a: a.shape[-1])  # scores (1, N, 1), boxes (1, N, 16)
        boxes, scores = by_width[-1], by_width[0]
        if scores.size != self.anchors.shape[0]:
            raise EdgekitError(f"the detector gives {scores.size} scores but the {self.model} decoding "
                               f"has {self.anchors.shape[0]} anchors: is it the matching BlazeFace model?")
        return boxes, scores

    def __call__(self, outputs: dict, transform) -> list[dict]:
        """[{"box": [x0, y0, x1, y1], "score": s, "keypoints": [[x, y] x 6]}], best first."""
        raw_boxes, raw_scores = self._outputs(outputs)
        boxes, scores = decode(raw_boxes, raw_scores, self.anchors, self.opts["input_size"], self.min_score)
        kept = weighted_nms(boxes, scores, self.nms_threshold)
        if self.max_faces:
            kept = kept[:self.max_faces]
        if not kept:
            return []
        pts = transform.norm_to_frame(np.stack([k[0] for k in kept]))  # undo the letterbox and the resize
        return [{"box": p[:2].reshape(4).tolist(), "score": score, "keypoints": p[2:].round(3).tolist()}
                for p, (_, score) in zip(pts, kept)]


@register("face_detections")
class FaceDetections(Node):
    """BlazeFace raw outputs -> faces in frame pixels: {"faces": [{"box": [x0, y0, x1, y1], "score": s,
    "keypoints": [[x, y] x 6]}]}. Needs the preprocess transform (letterbox) that came with the tensor.
    `model`: short_range (128x128) or full_range (192x192, far faces); `min_score` defaults to the model's
    MediaPipe threshold."""

    inputs = ("in",)
    outputs = ("faces",)
    light = True  # ~0.1 ms of numpy on the few anchors that fire

    def __init__(self, name: str, model: str = "short_range", min_score: float | None = None,
                 nms_threshold: float = 0.3, max_faces: int = 0, boxes_output: str | None = None,
                 scores_output: str | None = None, **options):
        super().__init__(name, **options)
        try:
            self.decoder = FaceDecoder(model, min_score, nms_threshold, max_faces, boxes_output, scores_output)
        except EdgekitError as e:
            raise EdgekitError(f"face_detections: {e}") from None

    def process(self, inputs, packet):
        x = inputs["in"]
        t = x["transform"]
        return {"faces": self.decoder(x["outputs"], t), "frame_size": list(t.frame_size)}


def face_roi(face: dict, scale: float = 1.5) -> tuple[tuple, tuple, float]:
    """MediaPipe's detection -> landmark ROI: a square of the box's long side x scale, centred on the box,
    rotated so the eyes are level (rotation from keypoints 0 and 1, target angle 0)."""
    x0, y0, x1, y1 = face["box"]
    kp = face["keypoints"]
    (ax, ay), (bx, by) = kp[0], kp[1]
    angle = -math.atan2(-(by - ay), bx - ax)
    angle = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    side = max(x1 - x0, y1 - y0) * scale
    return ((x0 + x1) / 2, (y0 + y1) / 2), (side, side), angle


def crop_faces(frame: np.ndarray, faces: list[dict], size: int = 192, scale: float = 1.5):
    """One rotated square crop (size x size) per face and the 2x3 affines mapping crop pixels to the frame."""
    from ..imageops import rotated_crop

    crops, affines = [], []
    for face in faces:
        center, side, angle = face_roi(face, scale)
        crop, back = rotated_crop(frame, center, side, angle, (size, size))
        crops.append(crop)
        affines.append(back)
    return crops, affines


@register("face_crops")
class FaceCrops(Node):
    """frame + faces -> one rotated square crop per face at the landmark model's size, as `images` for an
    inference node (whose manifest/graph preprocessing then normalises them), with the crop->frame affines."""

    inputs = ("frame", "faces")
    outputs = ("crops",)

    def __init__(self, name: str, size: int = 192, scale: float = 1.5, **options):
        super().__init__(name, **options)
        self.size, self.scale = int(size), float(scale)

    def process(self, inputs, packet):
        faces = inputs["faces"]["faces"]
        crops, affines = crop_faces(inputs["frame"], faces, self.size, self.scale)
        return {"images": crops, "affines": affines, "faces": faces, "frame_size": inputs["faces"]["frame_size"]}


def add_landmarks(faces: list[dict], outputs: list[dict], affines: list, transforms: list,
                  min_presence: float = 0.5) -> list[dict]:
    """The landmark model's outputs per face crop -> each face with its `presence` and, above min_presence,
    its 468 `landmarks` in frame pixels."""
    out = []
    for face, outs, back, t in zip(faces, outputs, affines, transforms):
        arrays = sorted(outs.values(), key=lambda a: a.size)
        flag, data = arrays[0], arrays[-1]
        presence = float(1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[-1], -80, 80)))))
        face = dict(face, presence=presence)
        if presence > min_presence:
            pts = data.reshape(-1, 3)[:, :2].astype(np.float64)
            crop_px = t.to_frame(pts)  # model input pixels -> crop pixels (identity for a same-size crop)
            frame_px = crop_px @ back[:, :2].T + back[:, 2]
            face["landmarks"] = frame_px.round(3).tolist()
        out.append(face)
    return out


@register("face_landmarks")
class FaceLandmarks(Node):
    """Landmark model outputs per crop -> 468 landmarks in frame pixels added to each face (faces whose
    face-presence score is below `min_presence` get none)."""

    inputs = ("in",)
    outputs = ("faces",)
    light = True  # one small matrix product per face

    def __init__(self, name: str, min_presence: float = 0.5, **options):
        super().__init__(name, **options)
        self.min_presence = float(min_presence)

    def process(self, inputs, packet):
        x = inputs["in"]
        faces = add_landmarks(x["faces"], x["outputs"], x["affines"], x["input_transforms"], self.min_presence)
        return {"faces": faces, "frame_size": x["frame_size"]}
