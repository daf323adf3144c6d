"""FaceMesh: BlazeFace detection and 468 face landmarks on a frame, on any backend, through the face app's
graph (apps/face/graph.yaml, or full_range.yaml for far faces) and its nodes' code (pipeline/nodes/face.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline.nodes.face import KEYPOINTS, FaceDecoder, add_landmarks, crop_faces
from .graphs import AppGraph, ModelsOwner, check_backend, check_frame, choose, run_images

GRAPHS = {"short": "graph.yaml", "full": "full_range.yaml"}  # BlazeFace short range (< ~2 m), full range (< ~5 m)


@dataclass
class Face:
    """One face in frame pixels: box [x0, y0, x1, y1], detection score, 6 keypoints (KEYPOINTS order), the
    landmark model's face presence and its 468 landmarks (None when presence is below min_presence)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    presence: float
    landmarks: np.ndarray | None

    KEYPOINTS = KEYPOINTS


class FaceMesh(ModelsOwner):
    """`FaceMesh(backend="ncnn").process(frame_bgr) -> [Face]`, best detection first.

    Args:
        backend: onnx, ncnn, mnn, tflite or openvino (models exported once into the pipeline cache).
        precision: the export precision, fp32 (None: the default), fp16 or int8: each model judged by the task
            metric the graph names for it (`metric:`), int8 calibrated on what each model is fed on `calib`.
        calib: int8 calibration media, a video file or image folder (None: the graph's source,
            samples/<app>.avi from tools/make_sample_media.py, where it exists).
        detector: "short" (128x128 BlazeFace, faces within ~2 m) or "full" (192x192, faces within ~5 m).
        threads: runtime threads (None: the runtime's default).
        max_faces: keep at most this many faces (0: all).
        cache: the export cache folder (None: the pipeline's, ~/.cache/edgekit/pipeline or $EDGEKIT_CACHE).
    """

    def __init__(self, backend: str = "onnx", precision: str | None = None, detector: str = "short",
                 threads: int | None = None, max_faces: int = 0, cache: str | Path | None = None,
                 calib: str | Path | None = None):
        graph = AppGraph("face", choose("detector", detector, GRAPHS), calib)
        check_backend(backend)
        det = graph.options("detections", "face_detections")
        det["max_faces"] = max_faces or det.get("max_faces", 0)
        self.decoder = FaceDecoder(**det)
        self.crop = graph.options("crops", "face_crops")
        self.min_presence = graph.options("landmarks", "face_landmarks").get("min_presence", 0.5)
        self.models = []
        try:
            self.detector = graph.model("detector", backend, threads, precision, cache)
            self.models.append(self.detector)
            self.landmarker = graph.model("landmarker", backend, threads, precision, cache)
            self.models.append(self.landmarker)
        except BaseException:
            self.close()
            raise
        self.backend, self.detector_kind = backend, detector

    def process(self, frame_bgr: np.ndarray) -> list[Face]:
        frame = check_frame(frame_bgr)
        outs, transforms = run_images(self.detector, [frame])
        faces = self.decoder(outs[0], transforms[0])
        crops, affines = crop_faces(frame, faces, **self.crop)
        outs, transforms = run_images(self.landmarker, crops)
        return [Face(np.asarray(f["box"]), f["score"], np.asarray(f["keypoints"]), f["presence"],
                     np.asarray(f["landmarks"]) if "landmarks" in f else None)
                for f in add_landmarks(faces, outs, affines, transforms, self.min_presence)]
