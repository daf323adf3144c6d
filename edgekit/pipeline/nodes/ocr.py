"""PP-OCR pipeline nodes: DB postprocessing (probability map -> text boxes), text-line crops, the 180-degree
classifier's rotation, and CTC decoding with the model's character dictionary.

The algorithms follow PaddleOCR as packaged by rapidocr (DBPostProcess with dilation and the fast box score,
unclip with pyclipper, minimum-area boxes; get_rotate_crop_image; ClsPostProcess; CTCLabelDecode), rewritten
as graph nodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EdgekitError
from ..node import Node, register


def _mini_box(contour) -> tuple[np.ndarray, float]:
    import cv2

    rect = cv2.minAreaRect(contour)
    pts = sorted(list(cv2.boxPoints(rect)), key=lambda p: p[0])
    i1, i4 = (0, 1) if pts[1][1] > pts[0][1] else (1, 0)
    i2, i3 = (2, 3) if pts[3][1] > pts[2][1] else (3, 2)
    return np.array([pts[i1], pts[i2], pts[i3], pts[i4]], np.float32), min(rect[1])


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    import cv2

    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), np.uint8)
    shifted = box - np.array([xmin, ymin], np.float32)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2).astype(np.int32), 1)
    return float(cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0])


def _unclip(box: np.ndarray, ratio: float) -> np.ndarray:
    import pyclipper
    from shapely.geometry import Polygon

    poly = Polygon(box)
    distance = poly.area * ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return np.array(offset.Execute(distance), dtype=np.float32).reshape(-1, 1, 2)


def db_boxes(prob: np.ndarray, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, max_candidates=1000,
             dilate=True, min_size=3) -> list[tuple[np.ndarray, float]]:
    """A DB probability map (H, W) -> [(box (4, 2) in map pixels, score)]."""
    import cv2

    mask = (prob > thresh).astype(np.uint8)
    if dilate:
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours[:max_candidates]:
        pts, side = _mini_box(contour)
        if side < min_size:
            continue
        score = _box_score(prob, pts)
        if score < box_thresh:
            continue
        expanded = _unclip(pts, unclip_ratio)
        if expanded.size == 0:
            continue
        box, side = _mini_box(expanded)
        if side < min_size + 2:
            continue
        out.append((box, score))
    return out


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    xs = pts[np.argsort(pts[:, 0]), :]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], np.float32)


def sort_boxes(boxes: list) -> list:
    """Top to bottom, then left to right for boxes on the same line (within 10 px)."""
    b = sorted(boxes, key=lambda x: (x["box"][0][1], x["box"][0][0]))
    for i in range(len(b) - 1):
        for j in range(i, -1, -1):
            if abs(b[j + 1]["box"][0][1] - b[j]["box"][0][1]) < 10 and b[j + 1]["box"][0][0] < b[j]["box"][0][0]:
                b[j], b[j + 1] = b[j + 1], b[j]
            else:
                break
    return b


def text_boxes(det_output: np.ndarray, transform, **db) -> list[dict]:
    """PP-OCR det output (1, 1, H, W) + the preprocess transform -> [{"box": [[x, y] x 4] in frame pixels,
    clockwise from top-left, "det_score": s}] in reading order; `db` are db_boxes' thresholds."""
    fw, fh = transform.frame_size
    lines = []
    for box, score in db_boxes(det_output[0, 0], **db):
        p = transform.to_frame(box)
        p = order_clockwise(np.round(p).astype(np.float32))
        p[:, 0] = np.clip(p[:, 0], 0, fw - 1)
        p[:, 1] = np.clip(p[:, 1], 0, fh - 1)
        p = p.astype(np.int32).astype(np.float32)
        if int(np.linalg.norm(p[0] - p[1])) <= 3 or int(np.linalg.norm(p[0] - p[3])) <= 3:
            continue
        lines.append({"box": p.tolist(), "det_score": round(score, 5)})
    return sort_boxes(lines)


@register("db_postprocess")
class DBPostprocess(Node):
    """PP-OCR det outputs -> {"lines": [{"box": [[x, y] x 4] (frame pixels, clockwise from top-left),
    "det_score": s}]} sorted in reading order."""

    inputs = ("in",)
    outputs = ("boxes",)

    def __init__(self, name: str, thresh: float = 0.3, box_thresh: float = 0.5, unclip_ratio: float = 1.6,
                 max_candidates: int = 1000, dilate: bool = True, **options):
        super().__init__(name, **options)
        self.kw = dict(thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip_ratio,
                       max_candidates=max_candidates, dilate=dilate)

    def process(self, inputs, packet):
        x = inputs["in"]
        return {"lines": text_boxes(next(iter(x["outputs"].values())), x["transform"], **self.kw)}


def rotate_crop(frame: np.ndarray, pts) -> np.ndarray:
    """A text box (4, 2) -> the upright line image (perspective crop; tall crops turned by 90 degrees)."""
    import cv2

    pts = np.asarray(pts, np.float32)
    w = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    h = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(pts, dst)
    img = cv2.warpPerspective(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if img.shape[0] / max(img.shape[1], 1) >= 1.5:
        img = np.rot90(img)
    return np.ascontiguousarray(img)


@register("text_crops")
class TextCrops(Node):
    """frame + text boxes -> the line images, as `images` for the classifier/recogniser inference node."""

    inputs = ("frame", "boxes")
    outputs = ("crops",)

    def process(self, inputs, packet):
        lines = inputs["boxes"]["lines"]
        return {"images": [rotate_crop(inputs["frame"], ln["box"]) for ln in lines], "lines": lines}


def orient_lines(images: list, outputs: list[dict], lines: list[dict], labels=("0", "180"),
                 threshold: float = 0.9) -> tuple[list, list[dict]]:
    """The classifier's outputs per line -> the line images turned upright and the lines with their
    `angle` and `angle_score`."""
    import cv2

    upright, out = [], []
    for img, outs, line in zip(images, outputs, lines):
        prob = next(iter(outs.values())).reshape(-1)
        idx = int(np.argmax(prob))
        label, score = labels[idx], float(prob[idx])
        rotated = "180" in label and score > threshold
        if rotated:
            img = cv2.rotate(img, cv2.ROTATE_180)
        upright.append(img)
        out.append(dict(line, angle=label if rotated else labels[0], angle_score=round(score, 5)))
    return upright, out


@register("text_orientation")
class TextOrientation(Node):
    """Classifier outputs per line -> the line images turned upright (label '180' above `threshold` rotates
    the crop by 180 degrees), as `images` for the recogniser."""

    inputs = ("in",)
    outputs = ("crops",)

    def __init__(self, name: str, labels=("0", "180"), threshold: float = 0.9, **options):
        super().__init__(name, **options)
        self.labels, self.threshold = list(labels), float(threshold)

    def process(self, inputs, packet):
        x = inputs["in"]
        images, lines = orient_lines(x["images_in"], x["outputs"], x["lines"], self.labels, self.threshold)
        return {"images": images, "lines": lines}


def load_dictionary(ref: str | Path) -> list[str]:
    """The CTC character list: an ONNX file's metadata 'character' (PP-OCR models as rapidocr ships them) or a
    text file with one character per line; index 0 is the CTC blank and a space is appended, as PaddleOCR does."""
    path = Path(ref)
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        if "character" not in meta:
            raise EdgekitError(f"{path.name}: no 'character' metadata; give `dictionary:` a text file")
        chars = meta["character"].splitlines()
    else:
        chars = [ln.rstrip("\r\n") for ln in path.read_text(encoding="utf-8").splitlines()]
    return ["blank"] + chars + [" "]


def dictionary_for(dictionary: str | None, model=None) -> list[str]:
    """The character list a recogniser decodes with: `dictionary` (a .txt, or an .onnx with 'character'
    metadata) if given, else the recogniser's own model (an inference node: its `model` and graph folder)."""
    from .. import models

    if dictionary:
        return load_dictionary(models.resolve_source(dictionary))
    if model is None:
        raise EdgekitError("give `dictionary:` (a .txt or an .onnx with 'character' metadata) or `model_node:`")
    return load_dictionary(models.onnx_model(model.model, getattr(model, "base", None)))


def ctc_decode(probs: np.ndarray, chars: list[str]) -> tuple[str, float]:
    """(T, C) probabilities -> (text, mean confidence): best path, repeats merged, blanks removed."""
    idx = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    keep = np.ones(len(idx), bool)
    keep[1:] = idx[1:] != idx[:-1]
    keep &= idx != 0
    text = "".join(chars[i] for i in idx[keep])
    return text, float(np.mean(conf[keep])) if keep.any() else 0.0


def read_lines(outputs: list[dict], lines: list[dict], chars: list[str], min_score: float = 0.5) -> list[dict]:
    """The recogniser's outputs per line -> the lines with `text` and `score`; those below min_score or blank
    are left out."""
    out = []
    for outs, line in zip(outputs, lines):
        text, score = ctc_decode(next(iter(outs.values()))[0], chars)
        if score >= min_score and text.strip():
            out.append(dict(line, text=text, score=round(score, 5)))
    return out


@register("ctc_decode")
class CTCDecode(Node):
    """Recogniser outputs per line -> {"lines": [{"box", "text", "score", ...}]}; lines scoring below
    `min_score` are left out (rapidocr's text_score)."""

    inputs = ("in",)
    outputs = ("text",)

    def __init__(self, name: str, dictionary: str | None = None, model_node: str | None = None,
                 min_score: float = 0.5, **options):
        super().__init__(name, **options)
        self.dictionary, self.model_node, self.min_score = dictionary, model_node, float(min_score)

    def open(self) -> None:
        model = None
        if not self.dictionary and self.model_node:
            node = self.graph.nodes.get(self.model_node)
            if node is None or not hasattr(node, "model"):
                raise EdgekitError(f"model_node '{self.model_node}' is not an inference node of this graph")
            model = node
        self.chars = dictionary_for(self.dictionary, model)

    def process(self, inputs, packet):
        x = inputs["in"]
        return {"lines": read_lines(x["outputs"], x["lines"], self.chars, self.min_score)}
