"""edgekit: take an ONNX model to edge devices (ncnn, MNN, TFLite, OpenVINO) and prove it still works there.

    import edgekit
    results = edgekit.export("model.onnx", target="ncnn", input_shapes=["x:1x3x48x192"])
    runner = edgekit.load(results[0].path, threads=2)
    outputs = runner({"x": array})   # ONNX names, shapes, layouts and dtypes on every backend
"""
__version__ = "0.1.0"

__all__ = ["bench", "check", "export", "import_tflite", "load", "__version__"]


# Imported eagerly: `edgekit.export` must stay the function even after the `edgekit.export` module loads.
from .export import export  # noqa: E402


def import_tflite(*args, **kwargs):
    from .importer import import_tflite as _import_tflite

    return _import_tflite(*args, **kwargs)


def bench(*args, **kwargs):
    from .harness.bench import bench as _bench

    return _bench(*args, **kwargs)


def load(*args, **kwargs):
    from .runner import load as _load

    return _load(*args, **kwargs)


def check(*args, **kwargs):
    from .harness.check import check as _check

    return _check(*args, **kwargs)
