"""Normalisation passes: small named rewrites of the ONNX graph we hand a converter.

Each pass is a function `model -> (model, changed)` in a module of its own whose docstring says which
converter problem it solves. Which passes a converter needs is a fact about its backend (`Backend.passes`);
`export` applies a backend's passes in registry order and records the ones that changed the model."""
from __future__ import annotations

import importlib
from typing import Callable

import onnx

# name -> module under edgekit.onnx.passes; order is the order they run in
REGISTRY = {
    "freeze-inputs": "freeze_inputs",  # run(model, values); without values it changes nothing
    "dequantize-dynamic": "dequantize_dynamic",
    "rnn-unroll": "rnn_unroll",
    "simplify": "simplify",
    "sanitize-names": "sanitize_names",
    "pad-mode": "pad_mode",
    "depth-to-space-crd": "depth_to_space_crd",
    "fp16-weight-range": "fp16_weight_range",
    "reshape-static": "reshape_static",
    "unit-axis-reshape": "unit_axis_reshape",
    "strided-slice": "strided_slice",
    "erf-gelu": "erf_gelu",
}


def ordered(names) -> list[str]:
    """`names` in the order the passes run (registry order); unknown names are refused."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        from ...errors import EdgekitError

        raise EdgekitError(f"unknown pass(es) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return [p for p in REGISTRY if p in set(names)]


def get(name: str) -> Callable[[onnx.ModelProto], tuple[onnx.ModelProto, bool]]:
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}").run


def apply(model: onnx.ModelProto, names: list[str]) -> tuple[onnx.ModelProto, list[str]]:
    applied = []
    for name in names:
        model, changed = get(name)(model)
        if changed:
            applied.append(name)
    return model, applied
