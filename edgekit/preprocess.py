"""Image -> model input tensor: the one implementation behind export and check verification, bench, `edgekit run
IMAGE` and the pipeline's preprocess node (two copies had drifted apart). It also returns the affine Transform
each resize applies, so postprocessing can put boxes and points back on the frame.

Frames are OpenCV's BGR uint8 unless told otherwise; the colour swap to the model's order happens after the
resize (resizing is per channel, so the result is bit-identical and the swap touches only model-input pixels)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EdgekitError
from .manifest import COLORS, Preprocessing, TensorSpec, format_shape

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# When nothing says how an image model normalises, assume the common [-1, 1] scaling.
DEFAULT_PREPROCESSING = Preprocessing(color="rgb", mean=[0.5] * 3, std=[0.5] * 3)


@dataclass
class Transform:
    """frame pixel (x, y) -> model input pixel: (x * sx + tx, y * sy + ty); `size` is the input's (w, h)."""

    sx: float
    sy: float
    tx: float
    ty: float
    size: tuple
    frame_size: tuple  # (w, h) of the frame

    def to_frame(self, pts) -> np.ndarray:
        """Model-input pixel coordinates (..., 2) -> frame pixel coordinates."""
        return (np.asarray(pts, np.float64) - (self.tx, self.ty)) / (self.sx, self.sy)  # per frame: few ops

    def norm_to_frame(self, pts) -> np.ndarray:
        """Coordinates normalised to the model input ([0, 1]) -> frame pixels."""
        return self.to_frame(np.asarray(pts, np.float64) * self.size)


def input_hw(spec: TensorSpec, layout: str) -> tuple[int, int]:
    h, w = (spec.shape[1], spec.shape[2]) if layout == "NHWC" else (spec.shape[2], spec.shape[3])
    if not (isinstance(h, int) and isinstance(w, int)):
        raise EdgekitError(f"input '{spec.name}' has dynamic size {format_shape(spec.shape)}; give a static shape")
    return h, w


def prepare(frame: np.ndarray, spec: TensorSpec, pre: Preprocessing | None,
            color: str = "bgr", contiguous: bool = True) -> tuple[np.ndarray, Transform]:
    """A uint8 frame in `color` order -> (input tensor (1, C, H, W) or (1, H, W, C), Transform).
    No preprocessing: DEFAULT_PREPROCESSING. The tensor is built channels-last (what OpenCV makes); an NCHW one
    is that buffer transposed, copied to C order unless `contiguous=False` (for a runner that feeds NHWC anyway,
    e.g. LiteRT: two transposes of every frame were a fifth of BlazeFace's preprocessing)."""
    import cv2

    plan = _plan(pre or DEFAULT_PREPROCESSING)
    if color not in COLORS:
        raise EdgekitError(f"unknown frame colour order '{color}'; use {' or '.join(COLORS)}")
    h, w = input_hw(spec, plan.layout)
    fh, fw = frame.shape[:2]
    swap = color != plan.color  # a swap either way, after the resize: it then touches only model-input pixels

    if plan.resize == "stretch":
        img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        x = plan.normalize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if swap else img)
        t = Transform(w / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
    elif plan.resize == "letterbox":  # keep the aspect ratio, centre, pad with black, sampled as MediaPipe does
        # MediaPipe's ImageToTensor maps frame pixel x to x * scale + pad (cv2.warpAffine, corner-aligned), where
        # cv2.resize samples pixel centres: on BlazeFace's 5x downscale the two grids alias into different inputs,
        # and only MediaPipe's reproduces its detections (benchmarks/vs_mediapipe.py: box IoU 0.74 -> 0.94 min)
        scale = min(w / fw, h / fh)
        x0, y0 = (w - fw * scale) / 2, (h - fh * scale) / 2
        img = cv2.warpAffine(frame, np.float32([[scale, 0, x0], [0, scale, y0]]), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = plan.normalize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if swap else img)
        t = Transform(scale, scale, x0, y0, (w, h), (fw, fh))
    else:  # keep-ratio-pad-right (validate() refused any other mode)
        # PaddleOCR's text-line resize (rapidocr's resize_norm_img): the height fills the input, the width
        # follows the aspect ratio up to the input's width (longer lines are squeezed), and the rest on the
        # right is padded with 0 *after* normalisation.
        nw = min(w, max(1, int(np.ceil(h * fw / max(fh, 1)))))
        img = cv2.resize(frame, (nw, h), interpolation=cv2.INTER_LINEAR)
        x = np.zeros((h, w, 3), np.float32)
        x[:, :nw] = plan.normalize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if swap else img)
        t = Transform(nw / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
    if plan.layout == "NHWC":
        return x[None], t
    x = x.transpose(2, 0, 1)[None]
    return (np.ascontiguousarray(x) if contiguous else x), t


class _Plan:
    """A validated Preprocessing's constants, made once per distinct preprocessing (prepare runs per frame)."""

    def __init__(self, pre: Preprocessing):
        self.color, self.resize, self.layout = pre.color, pre.resize, pre.layout
        mean = np.broadcast_to(np.float32(pre.mean), (3,)).astype(np.float64)
        std = np.broadcast_to(np.float32(pre.std), (3,)).astype(np.float64)
        # (img * scale - mean) / std == img * a + b: two passes over the pixels instead of three
        self.a, self.b = (np.float32(pre.scale) / std).astype(np.float32), (-mean / std).astype(np.float32)
        self.uniform = bool(np.all(self.a == self.a[0]) and np.all(self.b == self.b[0]))
        self._rows: dict = {}

    def normalize(self, img: np.ndarray) -> np.ndarray:
        """img * a + b per channel, in float32, into a fresh array (frames in flight each keep their own).
        Per-channel constants are applied on rows of interleaved channels against a row-long vector:
        broadcasting a 3-vector over the last axis makes numpy's inner loop 3 long (4x slower than the resize)."""
        if self.uniform:
            x = np.multiply(img, self.a[0], dtype=np.float32)
            x += self.b[0]
            return x
        h, w = img.shape[:2]
        c = img.shape[2] if img.ndim == 3 else 1
        rows = self._rows.get((w, c))
        if rows is None:
            rows = self._rows[(w, c)] = (np.tile(self.a[:c], w), np.tile(self.b[:c], w))
        x = np.multiply(np.ascontiguousarray(img).reshape(h, w * c), rows[0], dtype=np.float32)
        x += rows[1]
        return x.reshape(img.shape)


def _plan(pre: Preprocessing) -> _Plan:
    """The plan for `pre`, validated (fields may have been set after creation, so it is keyed by their values)."""
    try:
        key = (pre.color, _key(pre.mean), _key(pre.std), float(pre.scale), pre.resize, pre.layout)
        plan = _PLANS.get(key)
    except (TypeError, ValueError):  # unhashable or non-numeric values: validate() says what is wrong
        key, plan = None, None
    if plan is None:
        plan = _Plan(pre.validate())
        if key is not None:
            if len(_PLANS) > 64:
                _PLANS.clear()
            _PLANS[key] = plan
    return plan


def _key(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


_PLANS: dict = {}


def read_image(path: Path) -> np.ndarray:
    """An image file -> a BGR uint8 frame, what `prepare` takes by default."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgekitError(f"{path}: cannot read as an image")
    return img


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth picture (gradient, shapes, strokes; RGB uint8) with the statistics of a photo, not noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([(xx / max(w, 1)) * rng.uniform(60, 200), (yy / max(h, 1)) * rng.uniform(60, 200),
                     np.full_like(xx, rng.uniform(40, 200))], -1)
    img = base.astype(np.uint8).copy()
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, center, int(rng.integers(2, max(3, min(h, w) // 3))), color, -1)
        else:
            cv2.line(img, center, (int(rng.integers(0, w)), int(rng.integers(0, h))), color,
                     int(rng.integers(1, max(2, min(h, w) // 12))))
    return cv2.GaussianBlur(img, (3, 3), 0)
