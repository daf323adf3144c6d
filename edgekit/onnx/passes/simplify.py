"""Constant folding and graph simplification with onnxslim, once shapes are static.

Why: the converters trip over shape-computation subgraphs (Shape -> Gather -> Concat -> Reshape) that a
static-shape model does not need; PaddlePaddle exports (all three PP-OCR models) are full of them.

onnxslim's `FusionGemm` (3-D MatMul + Add -> Reshape, Gemm, Reshape) is skipped: it hides the MatMul -> Add ->
Reshape -> Transpose -> split pattern pnnx recognises as attention, so PP-OCRv4 rec on ncnn ended with
`Tensor.reshape` (5-D) and `torch.unbind` layers ncnn cannot create; and onnx2tf's onnxsim run then merges the
trailing Reshape with the next one, breaking rec on TFLite (see reshape_static.py)."""
from __future__ import annotations

import onnx


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    import onnxslim

    slim = onnxslim.slim(model, skip_fusion_patterns=["FusionGemm"])
    return (model, False) if slim is None else (slim, True)
