"""edgekit: take an ONNX model to edge devices (ncnn, MNN, TFLite, OpenVINO) and prove it still works there.

    import edgekit
    results = edgekit.export("model.onnx", target="ncnn", input_shapes=["x:1x3x48x192"])
    runner = edgekit.load(results[0].path, threads=2)
    outputs = runner({"x": array})   # ONNX names, shapes, layouts and dtypes on every backend
"""
__version__ = "0.1.0"

__all__ = ["export", "load", "__version__"]


def export(*args, **kwargs):
    from .export import export as _export

    return _export(*args, **kwargs)


def load(*args, **kwargs):
    from .runner import load as _load

    return _load(*args, **kwargs)
