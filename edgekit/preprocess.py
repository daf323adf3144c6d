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
        p = np.asarray(pts, np.float64)
        return np.stack([(p[..., 0] - self.tx) / self.sx, (p[..., 1] - self.ty) / self.sy], -1)

    def norm_to_frame(self, pts) -> np.ndarray:
        """Coordinates normalised to the model input ([0, 1]) -> frame pixels."""
        p = np.asarray(pts, np.float64)
        return self.to_frame(np.stack([p[..., 0] * self.size[0], p[..., 1] * self.size[1]], -1))


def input_hw(spec: TensorSpec, layout: str) -> tuple[int, int]:
    h, w = (spec.shape[1], spec.shape[2]) if layout == "NHWC" else (spec.shape[2], spec.shape[3])
    if not (isinstance(h, int) and isinstance(w, int)):
        raise EdgekitError(f"input '{spec.name}' has dynamic size {format_shape(spec.shape)}; give a static shape")
    return h, w


def prepare(frame: np.ndarray, spec: TensorSpec, pre: Preprocessing | None,
            color: str = "bgr") -> tuple[np.ndarray, Transform]:
    """A uint8 frame in `color` order -> (input tensor (1, C, H, W) or (1, H, W, C), Transform).
    No preprocessing: DEFAULT_PREPROCESSING."""
    import cv2

    pre = (pre or DEFAULT_PREPROCESSING).validate()  # re-checked here: fields may have been set after creation
    if color not in COLORS:
        raise EdgekitError(f"unknown frame colour order '{color}'; use {' or '.join(COLORS)}")
    h, w = input_hw(spec, pre.layout)
    fh, fw = frame.shape[:2]

    def resized(size):
        img = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        return img if color == pre.color else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # a swap either way

    if pre.resize == "stretch":
        x = _normalize(resized((w, h)), pre)
        t = Transform(w / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
    elif pre.resize == "letterbox":  # keep the aspect ratio, centre, pad with black, sampled as MediaPipe does
        # MediaPipe's ImageToTensor maps frame pixel x to x * scale + pad (cv2.warpAffine, corner-aligned), where
        # cv2.resize samples pixel centres: on BlazeFace's 5x downscale the two grids alias into different inputs,
        # and only MediaPipe's reproduces its detections (benchmarks/vs_mediapipe.py: box IoU 0.74 -> 0.94 min)
        scale = min(w / fw, h / fh)
        x0, y0 = (w - fw * scale) / 2, (h - fh * scale) / 2
        img = cv2.warpAffine(frame, np.float32([[scale, 0, x0], [0, scale, y0]]), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = _normalize(img if color == pre.color else cv2.cvtColor(img, cv2.COLOR_BGR2RGB), pre)
        t = Transform(scale, scale, x0, y0, (w, h), (fw, fh))
    else:  # keep-ratio-pad-right (validate() refused any other mode)
        # PaddleOCR's text-line resize (rapidocr's resize_norm_img): the height fills the input, the width
        # follows the aspect ratio up to the input's width (longer lines are squeezed), and the rest on the
        # right is padded with 0 *after* normalisation.
        nw = min(w, max(1, int(np.ceil(h * fw / max(fh, 1)))))
        x = np.zeros((h, w, 3), np.float32)
        x[:, :nw] = _normalize(resized((nw, h)), pre)
        t = Transform(nw / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
    x = x[None] if pre.layout == "NHWC" else x.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x, np.float32), t


def _normalize(img: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """(img * scale - mean) / std per channel, in float32. Computed on rows of interleaved channels against a
    row-long mean and std: broadcasting a 3-vector over the last axis makes numpy's inner loop 3 long, which made
    this 4x slower than the resize itself (0.58 ms of a 0.6 ms 128x128 letterbox); the arithmetic is the same."""
    h, w = img.shape[:2]
    c = img.shape[2] if img.ndim == 3 else 1
    rows = np.ascontiguousarray(img).reshape(h, w * c).astype(np.float32)
    mean, std = (np.tile(np.broadcast_to(np.float32(v), (c,)), w) for v in (pre.mean, pre.std))
    rows *= np.float32(pre.scale)  # in place: `rows` is astype's fresh copy
    rows -= mean
    rows /= std
    return rows.reshape(img.shape)


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
