"""The backend registry: the one place a format name maps to its module (DESIGN §2).

Modules are imported on first use, so a missing runtime only fails when that format is asked for."""
from __future__ import annotations

import importlib

from ..errors import EdgekitError

# format name -> module under edgekit.backends; adding a backend is one new module and one line here.
REGISTRY = {
    "onnx": "onnxruntime",
    "ncnn": "ncnn",
    "mnn": "mnn",
    "tflite": "tflite",
    "openvino": "openvino",
}
CONVERTED_FORMATS = ["ncnn", "mnn", "tflite", "openvino"]  # what `--target all` means


def get(fmt: str):
    if fmt not in REGISTRY:
        raise EdgekitError(f"unknown format '{fmt}'; known formats: {', '.join(REGISTRY)}")
    return importlib.import_module(f"{__name__}.{REGISTRY[fmt]}").BACKEND


def all_backends():
    return [get(f) for f in REGISTRY]
