"""The backend contract (docs/architecture.md, "Backends") and the Runner every backend returns.

A Runner speaks ONNX semantics: inputs and outputs are dicts keyed by the ONNX model's tensor names, in
the ONNX model's shapes, layouts and dtypes. Each backend hides its own conventions behind `_run`."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendMissing, ConversionError, EdgekitError
from ..manifest import Manifest, Precision, TensorSpec, format_shape


@dataclass
class ConvertOptions:
    precision: str = "fp32"
    workdir: Path | None = None  # scratch folder for the converter
    converter: dict = field(default_factory=dict)  # the recipe's converter options
    calibration_samples: list[dict] | None = None  # int8: the calibration set (ONNX input names), not verification
    max_drop: float = 0.01  # int8: the accuracy budget (1 - worst output cosine) the quantizer aims for
    calibration: dict | None = None  # input name -> array of realistic samples (N, ...) for tools that want data
    shapes: list[dict] | None = None  # dynamic export: example static shapes (input name -> dims), typical first
    preprocessing: object = None  # the manifest's Preprocessing (int8 quantizers that take images want it)
    # int8: the export's gate as a function of (reference outputs, outputs) over samples -> passed, so that a
    # quantizer's repair loop stops where the gate will pass (the cosine budget alone misses top-1 and error)
    accept: object = None


@dataclass(frozen=True)
class Recipe:
    """One rung of a backend's conversion ladder: the passes applied before its converter runs, and the
    converter options it adds. `why` says which models it is for."""

    name: str
    passes: tuple[str, ...] = ()
    converter: tuple[tuple[str, str], ...] = ()  # (option, value) pairs the backend's convert() reads
    why: str = ""
    for_ops: tuple[str, ...] = ()  # tried only on models that contain one of these ONNX ops (empty: any model)


RAW = Recipe("raw", (), (), "the upstream converter on the shape-fixed model, untouched: edgekit is never worse "
             "than the tool it wraps")


@dataclass
class Converted:
    """What a converter produced: files (role -> name inside the artifact folder) and the tensor mapping."""

    files: dict
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: Precision
    tools: dict = field(default_factory=dict)


class Backend:
    name = ""  # the format name users type
    runtime = ""  # the runtime's human name
    extra = ""  # the pip extra that installs it
    # Python modules that must be importable (checked without importing them): the runtime, which is all a
    # device needs to load an artifact, and the converter, needed only to export.
    requires: tuple[str, ...] = ()
    converter_requires: tuple[str, ...] = ()
    # Python modules a runner imports: imported (and timed) once by `bench` before any load, so that load time
    # is the artifact's own cost, not the one-time cost of importing a runtime into the process.
    runtime_modules: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cpu",)  # what `load(..., device=)` accepts
    precisions: tuple[str, ...] = ("fp32", "fp16")  # what `export(..., precision=)` can ask of it
    # precision -> (module, pip extra) that exporting at that precision needs beyond the converter (OpenVINO
    # int8: NNCF); checked by `require_precision` before any work
    precision_requires: dict = {}
    dynamic = True  # can keep dynamic input axes (export --dynamic); if not, `dynamic_why` says why
    dynamic_why = ""
    # The normalisation passes (names in edgekit.onnx.passes.REGISTRY) this backend's converter needs on most
    # models: the first rung of its ladder. Export runs them in registry order and records the ones that
    # changed the model.
    passes: tuple[str, ...] = ("simplify",)
    # Rungs tried after the first one, before the raw converter, for op families the first rung does not serve.
    extra_rungs: tuple[Recipe, ...] = ()

    @property
    def ladder(self) -> tuple[Recipe, ...]:
        """The recipes export tries in order until one converts and verifies: the one that wins most often
        first (so the common case costs one conversion), then the op-family rungs (a rung whose passes find
        nothing to rewrite is skipped without converting), then the raw converter."""
        return (Recipe("default", self.passes, (), "the passes this converter needs on most models"),
                *self.extra_rungs, RAW)

    def install_hint(self) -> str:
        return f"pip install 'edgekit[{self.extra}]'"

    def available(self, convert: bool = False) -> bool:
        import importlib.util

        modules = self.requires + (self.converter_requires if convert else ())
        return all(importlib.util.find_spec(m) is not None for m in modules)

    def require(self, convert: bool = False) -> None:
        if not self.available(convert):
            what = f"{self.runtime} (converter)" if convert and self.available() else self.runtime
            raise BackendMissing(self.name, what, self.install_hint())

    def require_precision(self, precision: str) -> None:
        """A clear error naming the extra when the quantizer for `precision` is not installed."""
        need = self.precision_requires.get(precision)
        if need and importlib.util.find_spec(need[0]) is None:
            raise EdgekitError(f"{self.name} {precision} needs {need[0]}, which is not installed: "
                               f"pip install 'edgekit[{need[1]}]'")

    def versions(self) -> dict:
        return {}

    def import_runtime(self) -> None:
        """Import the runtime's Python modules (what a first load would otherwise pay for)."""
        from ..native import quiet

        with quiet():
            for module in self.runtime_modules:
                importlib.import_module(module)

    def environment(self) -> dict:
        """Facts about this runtime in this process that a benchmark report should state (none by default)."""
        return {}

    def convert(self, onnx_path: Path, outdir: Path, inputs: list[TensorSpec], outputs: list[TensorSpec],
                options: ConvertOptions) -> Converted:
        raise NotImplementedError

    def load(self, folder: Path, manifest: Manifest, threads: int | None = None, device: str = "cpu") -> "Runner":
        """Load an artifact folder; `edgekit.runner.load` is the door that checks the path, the device and the
        files first, so a backend's own `load` only builds its runner."""
        raise NotImplementedError


def dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Runner:
    """A loaded artifact. `runner({"x": array})` -> {"out": array}, in ONNX names/shapes/layouts/dtypes."""

    # True where `_run` takes any strides (it copies into the runtime's own layout anyway): check_feeds then
    # passes a transposed view through instead of copying it to C order first (LiteRT: an NCHW view of an NHWC
    # buffer goes in without a copy at all)
    strided_feeds = False

    def __init__(self, manifest: Manifest, folder: Path | None, threads: int | None):
        self.manifest = manifest
        self.folder = folder
        self.threads = threads
        self.inputs: list[TensorSpec] = manifest.inputs
        self.outputs: list[TensorSpec] = manifest.outputs
        # (name, dtype, shape) of every input for check_feeds' fast path; empty when any axis is dynamic
        self._fast_specs = [(s.name, np.dtype(s.dtype), tuple(s.shape)) for s in self.inputs] \
            if all(isinstance(d, int) for s in self.inputs for d in s.shape) else []

    @property
    def format(self) -> str:
        return self.manifest.format

    @property
    def precision(self) -> Precision:
        return self.manifest.precision

    @property
    def effective_precision(self) -> str:
        """The arithmetic the runtime reports it uses (backends that can ask their runtime override this)."""
        return self.manifest.precision.compute

    def settings(self) -> dict:
        """The runtime knobs this runner really runs with (reports show them beside the precision)."""
        return dict(self.manifest.precision.settings)

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(feeds)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self.check_feeds(feeds))

    def check_feeds(self, feeds: dict) -> dict[str, np.ndarray]:
        """Reject wrong names, dtypes and shapes with a message that says what was expected."""
        # Fast path (the common case in a loop): exactly the inputs, contiguous arrays of the right dtype and
        # static shape, checked against specs prepared once; it costs ~1 us instead of ~5-20 us per call, which
        # is 1-2% of a 1 ms model (benchmarks/runner_overhead.py). Anything else takes the full check below.
        fast = self._fast_specs
        if fast and len(feeds) == len(fast):
            out = {}
            for name, dtype, shape in fast:
                arr = feeds.get(name)
                if type(arr) is not np.ndarray or arr.dtype != dtype or arr.shape != shape:
                    break
                out[name] = arr if self.strided_feeds or arr.flags.c_contiguous else np.ascontiguousarray(arr)
            else:
                return out
        names = [s.name for s in self.inputs]
        missing = [n for n in names if n not in feeds]
        extra = [n for n in feeds if n not in names]
        if missing or extra:
            raise EdgekitError(f"inputs {sorted(feeds)} do not match the model's inputs {names}"
                               + (f" (missing: {', '.join(missing)})" if missing else ""))
        out = {}
        for spec in self.inputs:
            arr = np.asarray(feeds[spec.name])
            if arr.dtype != np.dtype(spec.dtype):
                raise EdgekitError(f"input '{spec.name}': dtype {arr.dtype}, the model takes {spec.dtype}")
            if spec.shape and (len(arr.shape) != len(spec.shape) or any(
                    isinstance(d, int) and d != a for d, a in zip(spec.shape, arr.shape))):
                raise EdgekitError(f"input '{spec.name}': shape {format_shape(list(arr.shape))}, "
                                   f"the model takes {format_shape(spec.shape)}")
            out[spec.name] = arr if self.strided_feeds else np.ascontiguousarray(arr)
        return out

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def restore_output(arr: np.ndarray, spec: TensorSpec, fmt: str) -> np.ndarray:
    """Give a backend output the ONNX output's shape (undoing a dropped batch axis or an NHWC layout)."""
    arr = np.asarray(arr)
    if spec.layout == "NHWC" and arr.ndim == 4:
        arr = arr.transpose(0, 3, 1, 2)
    want = spec.shape
    if want and all(isinstance(d, int) for d in want) and list(arr.shape) != want:
        if arr.size != math.prod(want):  # math.prod: np.prod costs ~5 us per call on a list
            raise ConversionError(fmt, f"output '{spec.name}' has shape {format_shape(list(arr.shape))}, "
                                       f"cannot be the ONNX shape {format_shape(want)}")
        arr = arr.reshape(want)
    elif want and arr.ndim == len(want) - 1 and spec.batch == "dropped":
        arr = arr[None]
    if arr.dtype != np.dtype(spec.dtype):
        arr = arr.astype(spec.dtype)
    return np.ascontiguousarray(arr)
