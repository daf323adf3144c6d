"""Graph rewrites that make more of an ncnn model quantizable.

pnnx writes a MatMul/Linear on a 2D blob (PP-OCRv4 rec's SVTR MLP and its 6625-class head) as `Gemm` with a
constant B, which ncnn2int8 does not turn into per-channel int8 (Gemm int8 has one B scale, `src/layer/gemm.cpp`
load_model). The same product is an `InnerProduct` in its 2D "gemm" mode (`src/layer/innerproduct.cpp` forward:
"bottom_blob.dims == 2 && w == num_input", out [h, num_output]; `src/layer/x86/innerproduct_x86.cpp`
forward_int8_x86 has the same 2D path), which does take int8 weights. On x86 that int8 2D path is slower than
fp32, so an InnerProduct on a 2D blob is then written as a 1x1 Convolution between two Permutes
(innerproducts_to_convolutions), whose int8 path is fast."""
from __future__ import annotations

import numpy as np

from .ncnn_model import Layer, NcnnModel, fp32_blob


def gemm_as_innerproduct(layer: Layer) -> bool:
    """Whether `layer` is y = A @ B^T (+ c per column) with a constant B and nothing else (gemm.cpp load_param)."""
    g = layer.get
    if layer.type != "Gemm" or len(layer.bottoms) != 1:
        return False
    plain = (g(0, 1.0) == 1.0 and g(1, 1.0) == 1.0 and g(2, 0) == 0 and g(3, 0) == 1 and g(4, 0) == 0
             and g(5, 0) == 1 and g(11, 0) == 0 and g(12, 0) == 0 and g(13, 0) == 0 and g(14, 0) == 0
             and g(18, 0) == 0 and g(8, 0) > 0 and g(9, 0) > 0)
    has_c = g(6, 0) == 1 and g(10, 0) != -1
    return plain and (not has_c or g(10, 0) == 4)


def gemms_to_innerproducts(model: NcnnModel, skip: set[str] | frozenset = frozenset()) -> list[str]:
    """Rewrite every plain constant-B Gemm (see gemm_as_innerproduct) as InnerProduct; returns their names."""
    done = []
    for layer in model.layers:
        if layer.name in skip or not gemm_as_innerproduct(layer):
            continue
        n, k = layer.get(8), layer.get(9)
        b, c = layer.blob("B"), layer.blob("C")
        layer.type = "InnerProduct"
        layer.params = {0: str(n), 1: str(int(c is not None)), 2: str(n * k)}
        layer.dirty = True
        b.role = "weight"  # B (transB=1) is [N, K] row-major: InnerProduct's weight layout, tag kept
        layer.blobs = [b] + ([fp32_blob("bias", c.floats(), False)] if c is not None else [])
        done.append(layer.name)
    return done


# ---------------------------------------------------------------- scalar affines and activations into convolutions

WEIGHTED = ("Convolution", "ConvolutionDepthWise", "InnerProduct")
_ACTIVATIONS = {"ReLU", "Clip", "Sigmoid", "HardSwish"}


def _bias_key(layer: Layer) -> int:
    return 1 if layer.type == "InnerProduct" else 5


def _float_weighted(layer: Layer) -> bool:
    """A float weighted layer with constant fp32 weights and no int8 scales."""
    w = layer.blob("weight")
    return (layer.type in WEIGHTED and len(layer.bottoms) == 1 and w is not None and w.tagged and w.tag == 0
            and layer.get(8, 0) == 0 and layer.get(19, 0) == 0)


def _plain(layer: Layer) -> bool:
    """... and no fused activation yet (what comes after it may still fold in)."""
    return _float_weighted(layer) and layer.get(9, 0) == 0


def _padded(layer: Layer) -> bool:
    return layer.type != "InnerProduct" and any(layer.get(k, 0) != 0 for k in (4, 14, 15, 16))


def _scalar_op(layer: Layer) -> tuple[float, float] | None:
    """A BinaryOp with a scalar (binaryop.cpp load_param: 0=op_type, 1=with_scalar, 2=b) as x -> a*x + b:
    add (0), sub (1), mul (2), div (3); None for any other layer."""
    if layer.type != "BinaryOp" or layer.get(1, 0) == 0 or len(layer.bottoms) != 1:
        return None
    op, b = layer.get(0, 0), float(layer.get(2, 0.0))
    if op == 3 and b == 0:
        return None
    return {0: (1.0, b), 1: (1.0, -b), 2: (b, 0.0), 3: (1.0 / b if b else 0.0, 0.0)}.get(op)


def _set_rows(layer: Layer, weight: np.ndarray, bias: np.ndarray) -> None:
    layer.blobs = [fp32_blob("weight", weight, True), fp32_blob("bias", bias, False)] + [
        b for b in layer.blobs if b.role not in ("weight", "bias")]
    layer.set(_bias_key(layer), 1)


def _rows(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    n = int(layer.get(0, 0))
    w = layer.blob("weight").floats().reshape(n, -1)
    b = layer.blob("bias")
    return w, (b.floats() if b is not None else np.zeros(n, np.float32))


def fold_affines(model: NcnnModel, padded: bool = True) -> list[str]:
    """Fold scalar BinaryOps and activations into the convolutions around them; returns the layers removed.

    PP-LCNetV3 / PP-HGNetV2 (PP-OCRv4/v5 det and rec) follow every convolution with a learnable affine block,
    x * a + b as two scalar BinaryOps, before and after its HardSwish; pnnx leaves them as separate layers, so
    each costs a full pass over the blob and keeps the activation out of the convolution. As ncnnoptimize does
    for BatchNorm and activations (`tools/ncnnoptimize.cpp` fuse_convolution_activation, ~1270-1345): an
    affine after a float Convolution / ConvolutionDepthWise / InnerProduct scales its weight rows and bias; a
    ReLU / Clip / Sigmoid / HardSwish after it becomes its activation_type (1, 2, 3, 4, 6; `10=` params) in
    the same layer; an affine before an unpadded one folds in as w' = a*w, bias' = bias + b * sum(w row)
    (padded borders would see the affine's b instead of zero, so padded layers are left alone). Exact up to fp32
    rounding; blob names of what stays are kept, so the model's outputs keep their names."""
    removed: list[str] = []
    changed = True
    while changed:
        changed = False
        by_bottom = {b: l for l in model.layers for b in l.bottoms}
        for layer in model.layers:
            nxt = by_bottom.get(layer.tops[0]) if len(layer.tops) == 1 and _plain(layer) else None
            if nxt is None:
                continue
            ab = _scalar_op(nxt)
            if ab is not None:
                w, b = _rows(layer)
                _set_rows(layer, w * np.float32(ab[0]), b * np.float32(ab[0]) + np.float32(ab[1]))
            elif nxt.type in _ACTIVATIONS:
                _fuse_activation(layer, nxt)
            else:
                continue
            layer.tops = list(nxt.tops)
            changed = _absorb(model, layer, nxt, removed)
            break
        if changed:
            continue
        for op in model.layers:
            ab = _scalar_op(op)
            nxt = by_bottom.get(op.tops[0]) if ab is not None else None
            if nxt is None or not _float_weighted(nxt):
                continue
            if _padded(nxt):  # p padded around a*x+b is (p-b)/a padded around x (convolution.cpp pad_value)
                if not padded or ab[0] == 0:
                    continue
                nxt.set(18, f"{(float(nxt.get(18, 0.0)) - ab[1]) / ab[0]:.9g}")
            w, b = _rows(nxt)
            shift = np.float32(ab[1]) * w.sum(1, dtype=np.float64).astype(np.float32)
            _set_rows(nxt, w * np.float32(ab[0]), b + shift)
            nxt.bottoms = list(op.bottoms)
            changed = _absorb(model, nxt, op, removed)
            break
    if removed:
        model.blob_count = len({t for l in model.layers for t in l.tops})
    return removed


def _absorb(model: NcnnModel, keeper: Layer, gone: Layer, removed: list[str]) -> bool:
    """`gone` is folded into `keeper` (whose blobs were already rewired): drop it from the model."""
    keeper.dirty = True
    model.layers.remove(gone)
    removed.append(gone.name)
    return True


def _fuse_activation(layer: Layer, act: Layer) -> None:
    """activation_type and params as ncnnoptimize sets them (ReLU 1 or 2 with slope, Clip 3, Sigmoid 4,
    HardSwish 6 with alpha, beta: relu.cpp, clip.cpp, hardswish.cpp load_param defaults)."""
    g = act.get
    if act.type == "ReLU":
        slope = float(g(0, 0.0))
        kind, params = (1, []) if slope == 0 else (2, [slope])
    elif act.type == "Clip":
        kind, params = 3, [float(g(0, -3.402823466e38)), float(g(1, 3.402823466e38))]
    elif act.type == "Sigmoid":
        kind, params = 4, []
    else:
        kind, params = 6, [float(g(0, 0.2)), float(g(1, 0.5))]
    layer.set(9, kind)
    if params:
        layer.params[-23310] = ",".join([str(len(params))] + [f"{p:.9g}" for p in params])


# ---------------------------------------------------------------- 2D InnerProduct as a 1x1 Convolution

def innerproducts_to_convolutions(model: NcnnModel, shapes: dict[str, tuple], skip: set[str] | frozenset = frozenset()
                                  ) -> list[str]:
    """Rewrite each InnerProduct on a 2D blob [T, K] ("gemm" mode) as Permute -> Reshape [K, 1, T] -> 1x1
    Convolution (same name, weight, bias, activation) -> Reshape [O, T] -> Permute, giving the same [T, O] blob.
    Why: ncnn x86's int8 InnerProduct on a 2D blob is slower than its fp32 one (measured on PP-OCRv4 rec's 6625-class
    head, 40 x 120 in: 2.65 ms int8 vs 1.33 ms fp32, 1 thread), while its int8 1x1 Convolution on the same numbers
    takes 0.33 ms. `shapes`: blob -> its ncnn shape (from a run), to find the 2D inputs; returns the layers'
    names. Permute order_type 1 swaps h and w of a 2D blob (`src/layer/permute.cpp` forward, dims == 2);
    Reshape 0=w 1=h 2=c (`src/layer/reshape.cpp`)."""
    done = []
    out: list[Layer] = []
    count = model.blob_count
    for layer in model.layers:
        shape = shapes.get(layer.bottoms[0]) if layer.bottoms else None
        o = layer.get(0, 0)
        if (layer.type != "InnerProduct" or layer.name in skip or layer.get(8, 0) or layer.blob("weight") is None
                or shape is None or len(shape) != 2 or o <= 0 or shape[1] != layer.get(2, 0) // o):
            out.append(layer)
            continue
        t, k = shape
        x, top = layer.bottoms[0], layer.tops[0]
        names = [f"{layer.name}_ekt{i}" for i in range(4)]  # new blobs
        count += 4

        def new(type_, suffix, bottom, top_, params):
            return Layer(type_, f"{layer.name}_{suffix}", [bottom], [top_], params, "", [], True)

        act = {key: v for key, v in layer.params.items() if key in (9, -23310)}
        conv = Layer("Convolution", layer.name, [names[1]], [names[2]],
                     {0: str(o), 1: "1", 5: layer.params.get(1, "0"), 6: layer.params[2], **act}, "",
                     list(layer.blobs), True)
        out += [new("Permute", "ekperm_in", x, names[0], {0: "1"}),
                new("Reshape", "ekreshape_in", names[0], names[1], {0: str(t), 1: "1", 2: str(k)}),
                conv,
                new("Reshape", "ekreshape_out", names[2], names[3], {0: str(t), 1: str(o)}),
                new("Permute", "ekperm_out", names[3], top, {0: "1"})]
        done.append(layer.name)
    model.layers = out
    model.blob_count = count
    return done
