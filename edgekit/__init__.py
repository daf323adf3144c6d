"""edgekit: take an ONNX model to edge devices (ncnn, MNN, TFLite, OpenVINO) and prove it still works there.

    import edgekit
    results = edgekit.export("model.onnx", target="ncnn", input_shapes=["x:1x3x48x192"])
    runner = edgekit.load(results[0].path, threads=2)
    outputs = runner({"x": array})   # ONNX names, shapes, layouts and dtypes on every backend

The public functions are the library's own (real signatures, `help(edgekit.export)`), imported on first use
so that `import edgekit` stays cheap: the runtimes and converters load only when a function needs them."""
from .version import __version__

__all__ = ["bench", "bundle", "check", "export", "import_tflite", "load", "verify", "__version__"]

# public name -> (module, attribute)
_PUBLIC = {
    "export": ("edgekit.exporter", "export"),
    "load": ("edgekit.runner", "load"),
    "check": ("edgekit.harness.check", "check"),
    "bench": ("edgekit.workflows", "bench"),
    "import_tflite": ("edgekit.importer", "import_tflite"),
    "bundle": ("edgekit.bundle", "make_bundle"),
    "verify": ("edgekit.bundle", "verify_bundle"),
}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        module, attr = _PUBLIC[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'edgekit' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
