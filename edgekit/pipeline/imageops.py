"""Image operations of the pipeline: model input preparation (edgekit.preprocess, the one shared with export,
check, bench and `edgekit run`, re-exported here for the nodes) and the rotated crops landmark models take."""
from __future__ import annotations

import numpy as np

from ..preprocess import Transform, input_hw, prepare  # noqa: F401  (re-exported for the pipeline)


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

