"""TextReader: PP-OCR text detection, orientation and recognition on a frame, on any backend, through the OCR
app's graph (apps/ocr/graph.yaml for PP-OCRv4, v6.yaml for PP-OCRv6) and its nodes' code
(pipeline/nodes/ocr.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..pipeline.nodes.ocr import dictionary_for, orient_lines, read_lines, rotate_crop, text_boxes
from .graphs import AppGraph, ModelsOwner, check_backend, check_frame, choose, run_images

GRAPHS = {"v4": "graph.yaml", "v6": "v6.yaml"}


@dataclass
class TextLine:
    """One line of text: its text, recognition score, quad box (4, 2) in frame pixels (clockwise from
    top-left) and the orientation the classifier gave it ("0" or "180")."""

    text: str
    score: float
    box: np.ndarray
    angle: str


class TextReader(ModelsOwner):
    """`TextReader(backend="mnn", version="v6").process(frame_bgr) -> [TextLine]` in reading order.

    Args:
        backend: onnx, ncnn, mnn, tflite or openvino (models exported once into the pipeline cache).
        version: "v4" (PP-OCRv4 det/rec, rapidocr-onnxruntime) or "v6" (PP-OCRv6 small det/rec, rapidocr 3.10).
        precision: the export precision, fp32 (None: the default), fp16 or int8: each model judged by the task
            metric the graph names for it (`metric:`), int8 calibrated on what each model is fed on `calib`.
        calib: int8 calibration media, a video file or image folder (None: the graph's source,
            samples/<app>.avi from tools/make_sample_media.py, where it exists).
        threads: runtime threads (None: the runtime's default).
        cache: the export cache folder (None: the pipeline's).
        artifacts: node name (detector, classifier, recognizer) -> an exported artifact folder to run instead
            of the graph's model, as the pipeline's --artifact NODE=PATH.
    """

    def __init__(self, backend: str = "onnx", version: str = "v4", precision: str | None = None,
                 threads: int | None = None, cache: str | Path | None = None, calib: str | Path | None = None,
                 artifacts: dict[str, str | Path] | None = None):
        graph = AppGraph("ocr", choose("version", version, GRAPHS), calib)
        check_backend(backend)
        self.db = graph.options("boxes", "db_postprocess")
        self.orientation = graph.options("orientation", "text_orientation")
        decode = graph.options("decode", "ctc_decode")
        self.min_score = decode.get("min_score", 0.5)
        nodes = ("detector", "classifier", "recognizer")
        unknown = set(artifacts or {}) - set(nodes)
        if unknown:
            raise EdgekitError(f"artifacts: no model node {', '.join(sorted(unknown))}; the nodes: {', '.join(nodes)}")
        self.models = []
        try:
            for name in nodes:
                self.models.append(graph.model(name, backend, threads, precision, cache, (artifacts or {}).get(name)))
        except BaseException:
            self.close()
            raise
        self.detector, self.classifier, self.recognizer = self.models
        self.chars = dictionary_for(decode.get("dictionary"), self.recognizer)
        self.backend, self.version = backend, version

    def process(self, frame_bgr: np.ndarray) -> list[TextLine]:
        frame = check_frame(frame_bgr)
        outs, transforms = run_images(self.detector, [frame])
        lines = text_boxes(next(iter(outs[0].values())), transforms[0], **self.db)
        if not lines:
            return []
        crops = [rotate_crop(frame, ln["box"]) for ln in lines]
        outs, _ = run_images(self.classifier, crops)
        crops, lines = orient_lines(crops, outs, lines, **self.orientation)
        outs, _ = run_images(self.recognizer, crops)
        return [TextLine(ln["text"], ln["score"], np.asarray(ln["box"], np.float32), ln["angle"])
                for ln in read_lines(outs, lines, self.chars, self.min_score)]
