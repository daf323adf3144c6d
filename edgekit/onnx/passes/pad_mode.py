"""Write the default `mode="constant"` on `Pad` nodes that leave it implicit.

Why: ONNX makes `mode` optional (default "constant") and tf2onnx omits it, but pnnx's ONNX importer only
translates a `Pad` that carries the attribute: without it the node stays a raw ONNX `Pad` layer in the .param,
which ncnn cannot create, and ncnn refuses the model ("pnnx left ops that ncnn cannot run: Pad"). Seen on all
four MediaPipe models imported from TFLite (BlazeFace short/full range, face landmark, iris landmark), whose
residual branches widen with a zero channel pad. With the attribute written out, pnnx emits an ncnn `Padding`
layer. The graph's meaning does not change."""
from __future__ import annotations

import onnx
from onnx import helper


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    changed = False
    for node in model.graph.node:
        if node.op_type == "Pad" and node.domain in ("", "ai.onnx") and not any(
                a.name == "mode" for a in node.attribute):
            node.attribute.append(helper.make_attribute("mode", "constant"))
            changed = True
    return model, changed
