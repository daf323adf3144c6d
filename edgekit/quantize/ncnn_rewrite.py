"""Graph rewrites that make more of an ncnn model quantizable.

pnnx writes a MatMul/Linear on a 2D blob (PP-OCRv4 rec's SVTR MLP and its 6625-class head) as `Gemm` with a
constant B, which ncnn2int8 does not turn into per-channel int8 (Gemm int8 has one B scale, `src/layer/gemm.cpp`
load_model). The same product is an `InnerProduct` in its 2D "gemm" mode (`src/layer/innerproduct.cpp` forward:
"bottom_blob.dims == 2 && w == num_input", out [h, num_output]; `src/layer/x86/innerproduct_x86.cpp`
forward_int8_x86 has the same 2D path), which does take int8 weights."""
from __future__ import annotations

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
