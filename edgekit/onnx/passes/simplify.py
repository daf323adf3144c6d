"""Constant folding and graph simplification with onnxslim, once shapes are static.

Why: the converters trip over shape-computation subgraphs (Shape -> Gather -> Concat -> Reshape) that a
static-shape model does not need; PaddlePaddle exports (all three PP-OCR models) are full of them."""
from __future__ import annotations

import onnx


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    import onnxslim

    slim = onnxslim.slim(model)
    return (model, False) if slim is None else (slim, True)
