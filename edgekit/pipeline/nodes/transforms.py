"""Preprocess: frame -> model input (resize/letterbox, colour order, normalise, layout) plus the transform back
to frame coordinates. Driven by the inference node's model: its artifact's manifest preprocessing where it has
one, else the preprocessing the graph gives."""
from __future__ import annotations

from ...errors import EdgekitError
from .. import imageops
from ..node import Node, register
from .inference import Inference, preprocessing_from


@register("preprocess")
class Preprocess(Node):
    inputs = ("frame",)
    outputs = ("tensor",)

    def __init__(self, name: str, model_node: str | None = None, input_shape: str | None = None,
                 preprocessing=None, **options):
        super().__init__(name, **options)
        self.model_node = model_node
        self.input_shape = input_shape
        self.preprocessing = preprocessing_from(preprocessing)

    def open(self) -> None:
        from ...manifest import TensorSpec
        from ..models import _shape_key

        if self.model_node:
            node = self.graph.nodes.get(self.model_node) if self.graph else None
            if not isinstance(node, Inference):
                raise EdgekitError(f"model_node '{self.model_node}' is not an inference node of this graph")
            if node.runner is None:  # opened in topological order; a preprocess upstream of it opens it first
                node.open()
            self.spec = node.spec
            self.pre = self.preprocessing or node.pre
            self.contiguous = not node.runner.strided_feeds  # its runner lays the tensor out itself
        else:
            shapes = _shape_key([self.input_shape]) if self.input_shape else None
            if not shapes or self.preprocessing is None:
                raise EdgekitError("give model_node (an inference node) or both input_shape and preprocessing")
            (name, dims), = shapes.items()
            self.spec = TensorSpec(name, "float32", dims)
            self.pre = self.preprocessing
            self.contiguous = True
        if self.pre is None:
            raise EdgekitError("no preprocessing: the artifact's manifest has none and the graph gives none")

    def process(self, inputs, packet):
        x, t = imageops.prepare(inputs["frame"], self.spec, self.pre, contiguous=self.contiguous)
        return {"inputs": {self.spec.name: x}, "transform": t}
