"""Image -> model input with the geometry to map model coordinates back to the frame.

The arithmetic of edgekit.harness.inputs.preprocess for stretch and letterbox; for `keep-ratio-pad-right` the
text-line resize PaddleOCR and rapidocr use (full height, width by aspect ratio, zero padding after
normalisation), which the PP-OCR classifier needs to be right. Plus the affine transform each resize applies, kept so that
postprocessing can put boxes and points back on the original frame. Frames are BGR uint8 (OpenCV's order)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EdgekitError
from ..manifest import Preprocessing, TensorSpec


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
        raise EdgekitError(f"input '{spec.name}' has a dynamic size {spec.shape}; export it with a static shape")
    return h, w


def prepare(frame_bgr: np.ndarray, spec: TensorSpec, pre: Preprocessing) -> tuple[np.ndarray, Transform]:
    """A BGR frame -> (input tensor (1, C, H, W) or (1, H, W, C), Transform)."""
    import cv2

    nhwc = pre.layout == "NHWC"
    h, w = input_hw(spec, pre.layout)
    img = frame_bgr
    fh, fw = img.shape[:2]
    if pre.resize == "stretch":
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        t = Transform(w / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
    elif pre.resize == "letterbox":  # keep the aspect ratio, centre, pad with black (MediaPipe)
        scale = min(w / fw, h / fh)
        nw, nh = max(1, round(fw * scale)), max(1, round(fh * scale))
        canvas = np.zeros((h, w, 3), np.uint8)
        x0, y0 = (w - nw) // 2, (h - nh) // 2
        canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        img = canvas
        t = Transform(nw / fw, nh / fh, float(x0), float(y0), (w, h), (fw, fh))
    elif pre.resize == "keep-ratio-pad-right":
        # PaddleOCR's text-line resize (rapidocr's resize_norm_img): the height fills the input, the width
        # follows the aspect ratio up to the input's width (longer lines are squeezed), and the rest on the
        # right is padded with 0 *after* normalisation.
        nw = min(w, max(1, int(np.ceil(h * fw / fh))))
        x = _normalize(_color(cv2.resize(img, (nw, h), interpolation=cv2.INTER_LINEAR), pre), pre)
        padded = np.zeros((h, w, 3), np.float32)
        padded[:, :nw] = x
        t = Transform(nw / fw, h / fh, 0.0, 0.0, (w, h), (fw, fh))
        x = padded[None] if nhwc else padded.transpose(2, 0, 1)[None]
        return np.ascontiguousarray(x, np.float32), t
    else:
        raise EdgekitError(f"unknown resize mode '{pre.resize}'")
    x = _normalize(_color(img, pre), pre)
    x = x[None] if nhwc else x.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x, np.float32), t


def _color(img: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """BGR -> the model's colour order, after the resize: swapping a few thousand model-input pixels is much
    cheaper than swapping the frame (a strided view that cv2.resize would first copy whole)."""
    import cv2

    return img if pre.color == "bgr" else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _normalize(img: np.ndarray, pre: Preprocessing) -> np.ndarray:
    return (img.astype(np.float32) * np.float32(pre.scale) - np.float32(pre.mean)) / np.float32(pre.std)


def rotated_crop(frame_bgr: np.ndarray, center, size, angle: float, out_wh) -> tuple[np.ndarray, np.ndarray]:
    """Crop a rotated rectangle (centre, (w, h) in pixels, angle in radians) to out_wh; returns the crop and
    the 2x3 affine matrix that maps crop pixels back to frame pixels."""
    import cv2

    cx, cy = center
    w, h = size
    ow, oh = out_wh
    c, s = np.cos(angle), np.sin(angle)
    # crop (u, v) -> frame: centre + R @ ((u/ow - 0.5) * w, (v/oh - 0.5) * h)
    back = np.array([[c * w / ow, -s * h / oh, 0.0], [s * w / ow, c * h / oh, 0.0]])
    back[:, 2] = [cx - back[0, 0] * ow / 2 - back[0, 1] * oh / 2, cy - back[1, 0] * ow / 2 - back[1, 1] * oh / 2]
    fwd = cv2.invertAffineTransform(back)
    crop = cv2.warpAffine(frame_bgr, fwd, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, back

