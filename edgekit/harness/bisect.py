"""`edgekit check --bisect`: find the first ONNX node whose output a backend no longer reproduces.

One generic way that works on every backend: rebuild the graph the backend was given (the source model with
the artifact's static shapes and passes), cut it after a candidate node (a prefix model whose output is that
node's output), convert the prefix with the artifact's backend and precision, and compare its output with
ONNX Runtime's value of the same tensor. Candidates are the failing output's ancestors in topological order;
a binary search needs about log2(candidates) conversions. A prefix that fails to convert counts as diverged."""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from onnx import helper

from .. import backends
from ..backends.base import ConvertOptions
from ..manifest import Manifest, TensorSpec, file_checksums
from ..onnx import passes as passes_mod
from ..onnx.inspect import graph_inputs
from ..onnx.shapes import fix_input_shapes
from ..runner import open_artifact, reference
from .compare import metrics
from .compare import passes as within
from .reference import reference_model, source_model


@dataclass
class Step:
    index: int  # position among the candidates (topological order)
    node: str
    op: str
    tensor: str
    cosine: float | None
    max_abs: float | None
    diverged: bool
    error: str | None = None


@dataclass
class BisectResult:
    output: str
    candidates: int
    conversions: int
    node: dict | None  # the first diverging node: name, op, inputs, outputs, attributes
    last_good: str | None
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def rebuild_normalized(manifest: Manifest, source: Path) -> onnx.ModelProto:
    """The graph the backend was handed: source model + the artifact's static shapes + its passes."""
    model = fix_input_shapes(reference_model(manifest, source), manifest.export_options.get("input_shapes") or {})
    model, _ = passes_mod.apply(model, list(manifest.passes))
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def _float_static(vi: onnx.ValueInfoProto) -> list[int] | None:
    t = vi.type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT or not t.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return dims if dims and all(d for d in dims) else None


def candidates(model: onnx.ModelProto, output: str) -> list[tuple[int, onnx.NodeProto, str, list[int]]]:
    """Ancestors of `output` (itself included) whose first output is a static float tensor, in graph order."""
    producer = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    shapes = {vi.name: _float_static(vi) for vi in list(model.graph.value_info) + list(model.graph.output)}
    needed, stack = set(), [output]
    while stack:
        t = stack.pop()
        i = producer.get(t)
        if i is None or i in needed:
            continue
        needed.add(i)
        stack.extend(x for x in model.graph.node[i].input if x)
    out = []
    for i in sorted(needed):
        node = model.graph.node[i]
        shape = shapes.get(node.output[0])
        if node.op_type not in ("Constant", "Shape") and shape:
            out.append((i, node, node.output[0], shape))
    return out


def node_info(node: onnx.NodeProto) -> dict:
    attrs = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, onnx.TensorProto):
            v = f"tensor{list(v.dims)}"
        elif isinstance(v, (list, tuple)):
            v = [x.decode(errors="replace") if isinstance(x, bytes) else x for x in v][:16]
        attrs[a.name] = v
    return {"name": node.name, "op": node.op_type, "inputs": list(node.input), "outputs": list(node.output),
            "attributes": attrs}


def bisect(artifact: Path, feed: dict, model=None, tol: dict | None = None, output: str | None = None,
           progress=None) -> BisectResult:
    progress = progress or (lambda msg: None)
    manifest = Manifest.load(artifact)
    backend = backends.get(manifest.format)
    precision = manifest.precision.requested
    tol = tol or {"cos": 0.999, "atol": 1e-4, "rtol": 1e-2}
    normalized = rebuild_normalized(manifest, source_model(manifest, model))
    output = output or normalized.graph.output[0].name
    cands = candidates(normalized, output)
    input_names = [s.name for s in graph_inputs(normalized)]
    in_specs = [TensorSpec(s.name, s.dtype, list(s.shape)) for s in graph_inputs(normalized)]

    # ONNX Runtime's value of every candidate tensor, in one run of the graph with them all exposed
    exposed = onnx.ModelProto()
    exposed.CopyFrom(normalized)
    have = {o.name for o in exposed.graph.output}
    for _, _, tensor, shape in cands:
        if tensor not in have:
            exposed.graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, shape))
    ref = reference(exposed)(feed)

    extractor = onnx.utils.Extractor(normalized)
    steps: dict[int, Step] = {}

    def evaluate(k: int) -> bool:
        _, node, tensor, shape = cands[k]
        progress(f"bisect: converting the prefix up to node {k + 1}/{len(cands)} ({node.op_type} {node.name})")
        with tempfile.TemporaryDirectory(prefix="edgekit-bisect-") as tmp:
            tmp = Path(tmp)
            try:
                sub = extractor.extract_model(input_names, [tensor])
                path = tmp / "prefix.onnx"
                onnx.save(sub, str(path))
                (tmp / "art").mkdir()
                (tmp / "work").mkdir()
                conv = backend.convert(path, tmp / "art",
                                       [TensorSpec(s.name, s.dtype, list(s.shape)) for s in in_specs],
                                       [TensorSpec(tensor, "float32", list(shape))],
                                       ConvertOptions(precision=precision, workdir=tmp / "work"))
                m = Manifest(manifest.format, conv.files, {}, conv.inputs, conv.outputs, conv.precision,
                             checksums=file_checksums(tmp / "art", conv.files))
                runner = open_artifact(tmp / "art", m, files_checked=True)
                got = runner(feed)[tensor]
                runner.close()
                mt = metrics(ref[tensor], got)
                bad = not within(mt, tol)
                steps[k] = Step(k, node.name, node.op_type, tensor, mt.cosine, mt.max_abs, bad)
            except Exception as e:  # a prefix the backend cannot convert or run: count it as diverged
                steps[k] = Step(k, node.name, node.op_type, tensor, None, None, True, f"{type(e).__name__}: {e}"[:300])
        return steps[k].diverged

    lo, hi = -1, len(cands) - 1  # invariant: prefix lo reproduces ONNX Runtime (or is the inputs), hi does not
    if cands and not evaluate(hi):
        return BisectResult(output, len(cands), len(steps), None, cands[hi][1].name, sorted(steps.values(),
                            key=lambda s: s.index))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if evaluate(mid):
            hi = mid
        else:
            lo = mid
    first = node_info(cands[hi][1]) if cands else None
    return BisectResult(output, len(cands), len(steps), first, cands[lo][1].name if lo >= 0 else None,
                        sorted(steps.values(), key=lambda s: s.index))

