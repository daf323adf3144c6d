"""Give every node a plain name ([A-Za-z0-9_./-]) and a unique one.

Why: onnxslim names nodes like `Softmax@0`, and onnx2tf builds Keras layer names from node names: the `@`
makes TensorFlow reject the layer ("Softmax@0" is not a valid scope name) and the whole conversion fails
(seen on ppocr mobile cls). Graph inputs and outputs keep their names: runners speak ONNX names."""
from __future__ import annotations

import re

import onnx

_BAD = re.compile(r"[^A-Za-z0-9_./-]")


def run(model: onnx.ModelProto) -> tuple[onnx.ModelProto, bool]:
    changed = False
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        name = _BAD.sub("_", node.name) or f"{node.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        if name != node.name:
            node.name = name
            changed = True
    return model, changed
