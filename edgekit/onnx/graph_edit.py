"""What the rewrite passes share for editing a graph in place: an index of producers and consumers, the
subgraphs of a node, every name a graph touches, removing what no output needs, and the static shapes
shape inference knows."""
from __future__ import annotations

import onnx


class GraphIndex:
    """Producers, consumers and outputs of a graph; `refresh()` after editing its nodes."""

    def __init__(self, graph: onnx.GraphProto):
        self.g = graph
        self.inits = {i.name: i for i in graph.initializer}
        self.n = 0  # a counter for unique names
        self.refresh()

    def refresh(self) -> None:
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.uses: dict[str, list] = {}
        for n in self.g.node:
            for i in n.input:
                self.uses.setdefault(i, []).append(n)
        self.outputs = {o.name for o in self.g.output}


def subgraphs(node: onnx.NodeProto):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def all_names(graph: onnx.GraphProto, into: set) -> set:
    """Every tensor name defined or used in `graph` and its nested subgraphs."""
    into.update(i.name for i in graph.input)
    into.update(i.name for i in graph.output)
    into.update(i.name for i in graph.initializer)
    for n in graph.node:
        into.update(n.input)
        into.update(n.output)
        for sub in subgraphs(n):
            all_names(sub, into)
    return into


def remove_dead(g: onnx.GraphProto) -> None:
    """Remove nodes and initializers that no graph output needs (names read inside subgraphs count)."""
    outputs = {o.name for o in g.output}
    while True:
        used = set(outputs)
        for n in g.node:
            used.update(n.input)
            for sub in subgraphs(n):
                used |= all_names(sub, set())  # outer-scope names a subgraph reads
        dead = [n for n in g.node if not any(o in used for o in n.output if o)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def static_shapes(model: onnx.ModelProto) -> dict[str, list[int]] | None:
    """Every tensor's shape where ONNX shape inference (with data propagation) knows all its dims: the graph's
    inputs, intermediate values and outputs. None when inference fails on the model."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        return None
    shapes = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = [d.dim_value for d in t.shape.dim]
    return shapes
