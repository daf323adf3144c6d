"""Normalisation passes: small named rewrites of the ONNX graph we hand a converter.

Each pass is a function `model -> (model, changed)` in a module of its own whose docstring says which
converter problem it solves. Backends list the passes they need in `PASSES_FOR`; `export` applies the
union in registry order and records the applied ones in the manifest."""
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
    "strided-slice": "strided_slice",
    "erf-gelu": "erf_gelu",
}

# Passes every export gets, and the extra ones a backend needs.
COMMON = ["simplify"]
PASSES_FOR = {
    "tflite": ["sanitize-names", "reshape-static"],
    "ncnn": ["pad-mode", "depth-to-space-crd", "fp16-weight-range"],
}


def get(name: str) -> Callable[[onnx.ModelProto], tuple[onnx.ModelProto, bool]]:
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}").run


def plan(formats: list[str]) -> list[str]:
    wanted = set(COMMON)
    for f in formats:
        wanted.update(PASSES_FOR.get(f, []))
    return [p for p in REGISTRY if p in wanted]


def apply(model: onnx.ModelProto, names: list[str]) -> tuple[onnx.ModelProto, list[str]]:
    applied = []
    for name in names:
        model, changed = get(name)(model)
        if changed:
            applied.append(name)
    return model, applied
