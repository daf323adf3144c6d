"""Annotate: draw results on the frame. Understands the result payloads the built-in postprocess nodes emit:
`faces` (box, score, keypoints, landmarks) and `lines` (4-point box, text), and generic `items` with any of
`box` ([x0, y0, x1, y1] or [[x, y] x N]), `points`, `label`. Returns a new BGR frame; the input is not changed."""
from __future__ import annotations

import numpy as np

from ..node import Node, register


def _color(value, default):
    return tuple(int(c) for c in value) if value is not None else default


@register("annotate")
class Annotate(Node):
    inputs = ("frame", "results")
    optional_inputs = ("results",)
    outputs = ("frame",)

    def __init__(self, name: str, color=None, point_color=None, thickness: int = 2, font_scale: float = 0.6,
                 show_text: bool = True, show_fps: bool = False, **options):
        super().__init__(name, **options)
        self.color = _color(color, (0, 220, 0))
        self.point_color = _color(point_color, (0, 80, 255))
        self.thickness, self.font_scale = int(thickness), float(font_scale)
        self.show_text, self.show_fps = bool(show_text), bool(show_fps)

    def _box(self, img, box, label=None):
        import cv2

        b = np.asarray(box, np.float64)
        if b.ndim == 1 and b.size == 4:
            x0, y0, x1, y1 = np.round(b).astype(int)
            cv2.rectangle(img, (x0, y0), (x1, y1), self.color, self.thickness)
            anchor = (x0, max(12, y0 - 6))
        else:
            pts = np.round(b.reshape(-1, 2)).astype(np.int32)
            cv2.polylines(img, [pts], True, self.color, self.thickness)
            anchor = (int(pts[:, 0].min()), max(12, int(pts[:, 1].min()) - 6))
        if label and self.show_text:
            self._text(img, label, anchor)

    def _text(self, img, text, org):
        import cv2

        text = text.encode("ascii", "replace").decode()  # Hershey fonts draw ASCII only
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale, (0, 0, 0), self.thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale, (255, 255, 255), 1, cv2.LINE_AA)

    def _points(self, img, pts, radius):
        """Dots as zero-length segments in one polylines call: 468 face landmarks cost one OpenCV call (and
        one GIL release) instead of 468. Anti-aliased for a few keypoints, plain for dense landmark sets."""
        import cv2

        p = np.round(np.asarray(pts, np.float64).reshape(-1, 2)).astype(np.int32)
        if len(p):
            cv2.polylines(img, np.repeat(p[:, None, :], 2, axis=1), False, self.point_color, 2 * radius,
                          cv2.LINE_AA if len(p) <= 32 else cv2.LINE_8)

    def process(self, inputs, packet):
        img = inputs["frame"].copy()
        r = inputs.get("results") or {}
        for face in r.get("faces", []):
            self._box(img, face["box"], f"face {face.get('score', 0):.2f}")
            self._points(img, face.get("keypoints", []), 3)
            if face.get("landmarks"):
                self._points(img, face["landmarks"], 1)
        for line in r.get("lines", []):
            self._box(img, line["box"], line.get("text"))
        for item in r.get("items", []):
            if "box" in item:
                self._box(img, item["box"], item.get("label"))
            if "points" in item:
                self._points(img, item["points"], 2)
        if self.show_fps and self.graph is not None:
            self._text(img, f"{self.graph.fps():.1f} fps", (8, 20))
        return img
