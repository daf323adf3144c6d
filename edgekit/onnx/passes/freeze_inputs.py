"""Replace named graph inputs by constants (`run(model, {"sr": 16000})`) and fold what becomes constant,
inlining every `If` whose condition is now known.

Why: models with a scalar control input — silero-VAD's 0-d int64 sample rate `sr`, an `If` on `sr == 16000`
choosing the 16 kHz or 8 kHz front end — break converters that have no scalar inputs or no control flow:
pnnx exits 255 on a 0-d input (DESIGN §10: "scalar inputs are not supported"); MNN converts the `If` but cannot
infer the shape of its output ("Compute Shape Error for features"), so every output comes back 0x0x0x0;
onnx2tf fails at the If ("onnx2tf failed at node front_end"). (export.py also crashes on a 0-d input before any
converter runs, stacking calibration samples with np.concatenate.) Freezing fixes the If on every format;
what remains of silero-like models is their LSTM (see rnn_unroll.py). A deployment runs at one sample rate, so the
input is a constant that needs its real value, not a generated one.

Exact: the frozen input is an initializer with the given value (cast to the input's dtype and shape); a node
is folded only when all its inputs are constants that depend on a frozen input, evaluated with
onnx.reference (the ONNX reference semantics); an `If` with a constant condition is replaced by the nodes of
the branch ONNX would run, its initializers lifted to the main graph, the branch's outputs renamed to the
If's outputs (an Identity where a branch output is an outer-scope name), and names it defines that already
exist elsewhere made unique (uses in nested subgraphs renamed too). Nested Ifs in the inlined branch fold the
same way. Nodes and initializers left without consumers are removed. For inputs equal to the frozen values,
the result computes the same numbers as the original graph (bit-identical on ONNX Runtime).

`run(model)` without values changes nothing (the export flow's pass list cannot carry values)."""
from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph_edit import all_names, remove_dead, subgraphs

# ops never folded: random (not a function of the inputs) or with subgraphs other than If
_NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
            "Loop", "Scan", "If", "SequenceMap"}


def run(model: onnx.ModelProto, values: dict | None = None) -> tuple[onnx.ModelProto, bool]:
    if not values:
        return model, False
    g = model.graph
    inputs = {i.name: i for i in g.input}
    missing = [n for n in values if n not in inputs]
    if missing:
        raise ValueError(f"freeze-inputs: the model has no input named {', '.join(missing)}")
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    derived: set[str] = set()  # constants that exist because of a frozen input (only these cone nodes fold)
    for name, value in values.items():
        vi = inputs[name]
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        arr = np.asarray(value, dtype=dtype)
        if dims and all(dims):
            arr = arr.reshape(dims)
        elif not dims:
            arr = arr.reshape(())
        g.input.remove(vi)
        for old in [i for i in g.initializer if i.name == name]:
            g.initializer.remove(old)
        g.initializer.append(numpy_helper.from_array(arr, name))
        consts[name] = arr
        derived.add(name)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    counter = itertools.count()
    while _fold_once(model, consts, derived, opset, counter):
        pass
    remove_dead(g)
    return model, True


def _fold_once(model, consts, derived, opset, counter) -> bool:
    g = model.graph
    for k, node in enumerate(g.node):
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Constant":
            if node.output[0] not in consts:
                consts[node.output[0]] = numpy_helper.to_array(_constant_value(node))
            continue
        ins = [i for i in node.input if i]
        if not ins or not all(i in consts for i in ins) or not any(i in derived for i in ins):
            continue
        if node.op_type == "If":
            lifted = _inline_if(g, k, node, bool(np.asarray(consts[node.input[0]]).reshape(-1)[0]), counter)
            consts.update({t.name: numpy_helper.to_array(t) for t in lifted})
            return True
        if node.op_type in _NO_FOLD:
            continue
        outs = _evaluate(node, consts, opset)
        if outs is None:
            continue
        g.node.remove(node)
        for name, arr in zip(node.output, outs):
            if name:
                consts[name] = np.asarray(arr)
                derived.add(name)
                g.initializer.append(numpy_helper.from_array(np.asarray(arr), name))
        return True
    return False


def _constant_value(node):
    a = next(a for a in node.attribute if a.name in ("value", "value_float", "value_int", "value_floats",
                                                     "value_ints"))
    if a.name == "value":
        return a.t
    v = helper.get_attribute_value(a)
    dtype = np.float32 if "float" in a.name else np.int64
    return numpy_helper.from_array(np.asarray(v, dtype=dtype))


def _evaluate(node, consts, opset):
    from onnx.reference import ReferenceEvaluator

    try:
        names = [i for i in node.input if i]
        graph = helper.make_graph([node], "fold", [], [helper.make_value_info(o, onnx.TypeProto()) for o in
                                                        node.output if o],
                                  [numpy_helper.from_array(np.asarray(consts[n]), n) for n in dict.fromkeys(names)])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return ReferenceEvaluator(m).run(None, {})
    except Exception:
        return None


def _rename(graph, mapping: dict) -> None:
    """Rename tensors in `graph` and, for names it does not redefine, in its nested subgraphs."""
    for n in graph.node:
        for i, name in enumerate(n.input):
            if name in mapping:
                n.input[i] = mapping[name]
        for i, name in enumerate(n.output):
            if name in mapping:
                n.output[i] = mapping[name]
        for sub in subgraphs(n):
            local = {i.name for i in sub.input} | {i.name for i in sub.initializer} | {
                o for m in sub.node for o in m.output}
            _rename(sub, {k: v for k, v in mapping.items() if k not in local})
    for o in graph.output:
        if o.name in mapping:
            o.name = mapping[o.name]
    for t in graph.initializer:
        if t.name in mapping:
            t.name = mapping[t.name]


def _inline_if(g, k, node, cond: bool, counter) -> None:
    branch = onnx.GraphProto()
    branch.CopyFrom(helper.get_attribute_value(next(a for a in node.attribute if
                                                    a.name == ("then_branch" if cond else "else_branch"))))
    # names the branch defines that clash with names outside it get a unique suffix
    outside = all_names(g, set()) - all_names(branch, set())
    outside |= {o for o in node.output}
    defined = [t.name for t in branch.initializer] + [o for n in branch.node for o in n.output if o]
    used = all_names(g, set()) | all_names(branch, set())
    mapping = {}
    for name in defined:
        if name in outside or name in node.output:
            new = name
            while new in used:
                new = f"{name}_{next(counter)}"
            used.add(new)
            mapping[name] = new
    # branch outputs produced inside the branch take the If's output names directly
    produced = {o for n in branch.node for o in n.output}
    identities = []
    branch_outs = [o.name for o in branch.output]
    for bo, io in zip(branch_outs, node.output):
        if bo in produced and branch_outs.count(bo) == 1:
            mapping[bo] = io
        else:  # an outer-scope name, a branch initializer or an output listed twice
            identities.append((bo, io))
    _rename(branch, mapping)
    prefix = node.name or f"If_{next(counter)}"
    new_nodes = []
    for n in branch.node:
        n.name = f"{prefix}/{n.name or n.op_type}"
        new_nodes.append(n)
    for bo, io in identities:
        new_nodes.append(helper.make_node("Identity", [mapping.get(bo, bo)], [io], name=f"{prefix}/out_{io}"))
    g.initializer.extend(branch.initializer)
    g.node.remove(node)
    for j, n in enumerate(new_nodes):
        g.node.insert(k + j, n)
    return list(branch.initializer)


