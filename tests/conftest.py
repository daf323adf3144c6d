"""Session-wide fixtures: each real model is converted once per test session and the artifacts reused."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.models import conv_net, save

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A background job (`.ci/run` runs the suite as one, like `cmd &` in any script) starts with SIGINT ignored, and
# an ignored signal stays ignored in every child: the tests' `edgekit` processes would then not stop on the
# Ctrl-C they are sent. Handle it again here, so children start with the default, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FORMATS = ["ncnn", "mnn", "tflite", "openvino"]


@pytest.fixture(scope="session")
def conv_model(tmp_path_factory) -> Path:
    """The small conv net with a dynamic batch axis, saved as ONNX."""
    return Path(save(conv_net(), tmp_path_factory.mktemp("models") / "conv_net.onnx"))


@pytest.fixture(scope="session")
def conv_exports(conv_model, tmp_path_factory):
    """conv_net exported to all four formats: {format: ExportResult}."""
    import edgekit

    out = tmp_path_factory.mktemp("conv_exports")
    return {r.format: r for r in edgekit.export(conv_model, target="all", out=out, input_shapes=["x:1x3x16x16"])}


@pytest.fixture(scope="session")
def text_images(tmp_path_factory):
    """Rendered text lines and pages: realistic inputs for the PP-OCR models."""
    from edgekit.fixtures import write_text_images

    folder = tmp_path_factory.mktemp("text_images")
    return {"text-line": write_text_images(folder, "text-line", 3),
            "text-page": write_text_images(folder, "text-page", 2)}


_OCR_CACHE: dict = {}


@pytest.fixture(scope="session")
def ocr_exports(tmp_path_factory, text_images):
    """Export one PP-OCR fixture model to all four formats (once per session): ocr_exports("ppocr-rec")."""
    import edgekit
    from edgekit.fixtures import OCR_MODELS

    def get(name: str) -> dict:
        if name not in _OCR_CACHE:
            fx = OCR_MODELS[name]
            out = tmp_path_factory.mktemp(f"ocr_{name}")
            results = edgekit.export(fx.path, target="all", out=out, input_shapes=[fx.input_shape],
                                     data=[str(p) for p in text_images[fx.kind]], samples=3,
                                     preprocessing=fx.preprocessing)
            _OCR_CACHE[name] = {r.format: r for r in results}
        return _OCR_CACHE[name]

    return get
