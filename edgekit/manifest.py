"""The artifact manifest, `edgekit.json`: dataclasses <-> human-readable JSON (docs/architecture.md, "Artifacts").

The manifest is the truth about an artifact: what it came from, how it was made, how its tensors map to
the ONNX model's, what precision it really runs at, how its inputs are preprocessed and how it verified."""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EdgekitError
from .fsutil import atomic_write_text

SCHEMA_VERSION = 1
MANIFEST_NAME = "edgekit.json"
# The preprocessing choices edgekit.preprocess implements (and the CLI offers).
COLORS = ("rgb", "bgr")
RESIZE_MODES = ("stretch", "letterbox", "keep-ratio-pad-right")
LAYOUTS = ("NCHW", "NHWC")


@dataclass
class TensorSpec:
    """One ONNX input or output and how the backend sees it."""

    name: str  # the ONNX model's name
    dtype: str  # numpy dtype name, e.g. "float32"
    shape: list  # ints for static axes, strings for named dynamic axes
    backend_name: str | None = None  # name on the backend side (ncnn "in0", TFLite signature key, ...)
    layout: str | None = None  # None: same layout as ONNX; e.g. "NHWC" when the backend transposed a 4D NCHW tensor
    batch: str = "kept"  # "kept", "dropped" (axis 0) or "dropped:K" (axis K): the axis ncnn does not see


@dataclass
class Precision:
    """What was asked and what the backend really uses (never silent)."""

    requested: str = "fp32"
    weights: str = "fp32"  # storage type of the weights in the written files
    compute: str = "fp32"  # arithmetic the runtime is configured for
    settings: dict = field(default_factory=dict)  # the exact runtime knobs that make it so
    quantization: dict | None = None  # int8: method, calibration samples, layers kept float and why, drops
    lint: list | None = None  # fp16/int8: the pre-flight findings (edgekit.quantize.lint), [] when none


@dataclass
class Preprocessing:
    """How an image becomes the model's input: x = (resize(img)[colour] * scale - mean) / std, then layout."""

    color: str = "rgb"  # channel order the model expects: "rgb" or "bgr"
    mean: list = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list = field(default_factory=lambda: [1.0, 1.0, 1.0])
    scale: float = 1.0 / 255.0  # applied to 0..255 pixels before mean/std
    resize: str = "stretch"  # "stretch", "letterbox" or "keep-ratio-pad-right" (text lines)
    layout: str = "NCHW"  # layout of the ONNX input

    def __post_init__(self):
        self.validate()

    def validate(self) -> "Preprocessing":
        """Refuse what edgekit.preprocess does not implement: a typo must not quietly become another resize."""
        for key, known in (("color", COLORS), ("resize", RESIZE_MODES), ("layout", LAYOUTS)):
            if getattr(self, key) not in known:
                raise EdgekitError(f"unknown {key} '{getattr(self, key)}' in the preprocessing; use one of "
                                   f"{', '.join(known)}")
        for key in ("mean", "std"):  # one value, or one per colour channel (images are read as 3 channels)
            vals = getattr(self, key)
            try:
                nums = [float(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])]
            except (TypeError, ValueError):
                raise EdgekitError(f"preprocessing {key} {vals!r}: give numbers") from None
            text = ",".join(f"{v:g}" for v in nums)
            if len(nums) not in (1, 3):
                raise EdgekitError(f"preprocessing {key} {text} has {len(nums)} values; give one value, or one "
                                   f"per channel (3)")
            if not np.all(np.isfinite(nums)):
                raise EdgekitError(f"preprocessing {key} {text}: every value must be a finite number")
            if key == "std" and 0 in nums:
                raise EdgekitError(f"preprocessing std {text}: a std of 0 divides by zero; give non-zero values")
            if not isinstance(vals, (list, tuple)):  # a bare number (mean: 0.5 in a graph file) is every channel's
                setattr(self, key, nums * 3)
        return self


@dataclass
class OutputCheck:
    name: str
    shape: list
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    passed: bool
    p999_abs: float | None = None  # the abs error 99.9% of elements stay within (what the verdict judges)
    top1: float | None = None  # class-score outputs: fraction of rows whose argmax agrees
    metric: str | None = None  # the task metric the fp16/int8 gate judged this output by (None: cosine + error)
    metric_value: float | None = None  # its value over the verification samples
    drop: float | None = None  # 1 - metric_value: what the gate compared with max_drop


@dataclass
class Verification:
    passed: bool
    precision: str  # the precision the check ran at (the deployed one)
    inputs: str  # where the inputs came from
    samples: int
    tolerances: dict
    outputs: list[OutputCheck] = field(default_factory=list)
    shapes: list = field(default_factory=list)  # input shapes verified (several for dynamic artifacts)


@dataclass
class Manifest:
    format: str
    files: dict  # role -> file name inside the artifact folder
    source: dict  # file, path, sha256, opset, producer
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: Precision
    export_options: dict = field(default_factory=dict)
    tools: dict = field(default_factory=dict)  # tool -> version
    passes: list[str] = field(default_factory=list)  # the normalisation passes that changed the model
    recipe: str = ""  # the conversion-ladder rung that made this artifact
    attempts: list = field(default_factory=list)  # every rung tried: recipe, passes, status, error, seconds
    preprocessing: Preprocessing | None = None
    labels: list[str] | None = None
    verification: Verification | None = None
    tasks: dict | None = None  # --target mediapipe: the Tasks metadata written and the check through MediaPipe
    checksums: dict = field(default_factory=dict)  # role -> sha256 of the file, checked on every load
    created: str = ""
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        return _build(cls, data)

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            raise EdgekitError(f"{folder}: not an edgekit artifact (no {MANIFEST_NAME})")
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise EdgekitError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise EdgekitError(f"{path}: malformed manifest (a JSON {type(data).__name__}, not an object)")
        schema = data.get("schema", 0)
        if not isinstance(schema, int):
            raise EdgekitError(f"{path}: malformed manifest (schema {schema!r} is not a number)")
        if schema > SCHEMA_VERSION:
            raise EdgekitError(f"{path}: manifest schema {data['schema']} is newer than this edgekit understands")
        try:
            manifest = cls.from_dict(data)
            manifest.validate()
        except (TypeError, KeyError, AttributeError, ValueError, EdgekitError) as e:
            # EdgekitError: a value Preprocessing or validate() refuses
            raise EdgekitError(f"{path}: malformed manifest ({e})") from None
        return manifest

    def validate(self) -> None:
        """The types the runners rely on, so that a hand-edited manifest fails here and not inside a runtime."""
        if not isinstance(self.format, str) or not isinstance(self.files, dict) or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in self.files.items()):
            raise EdgekitError("format must be a name and files a mapping of role to file name")
        if not isinstance(self.checksums, dict):
            raise EdgekitError("checksums must be a mapping of role to sha256")
        for kind, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not isinstance(specs, list) or not all(isinstance(s, TensorSpec) for s in specs):
                raise EdgekitError(f"{kind} must be a list of tensors")
            for spec in specs:
                if not isinstance(spec.shape, list) or not all(isinstance(d, (int, str)) for d in spec.shape):
                    raise EdgekitError(f"tensor '{spec.name}': shape {spec.shape!r} is not a list of sizes")
                try:
                    np.dtype(spec.dtype)
                except TypeError:
                    raise EdgekitError(f"tensor '{spec.name}': unknown dtype {spec.dtype!r}") from None

    def file(self, folder: Path, role: str) -> Path:
        """The file for `role`, which must lie inside the artifact folder (a manifest is untrusted input)."""
        return contained(Path(folder), self.files[role])

    def check_files(self, folder: Path) -> None:
        """Refuse an artifact whose files escape its folder, are missing, or differ from the recorded sha256:
        a runtime handed corrupted weights can crash the process, so nothing unverified reaches one."""
        from .fsutil import sha256

        if not isinstance(self.files, dict) or not self.files:
            raise EdgekitError(f"{folder}: the manifest names no files")
        for role in self.files:
            path = self.file(folder, role)
            if not path.is_file():
                raise EdgekitError(f"{folder}: the {self.format} artifact's {role} file {self.files[role]} is missing")
            want = self.checksums.get(role)
            if want is None:
                raise EdgekitError(f"{folder}: the manifest records no sha256 for {self.files[role]}; "
                                   "re-export the artifact")
            if sha256(path) != want:
                raise EdgekitError(f"{folder}: {self.files[role]} does not match the sha256 in {MANIFEST_NAME} "
                                   f"(the {self.format} artifact is corrupted or was changed); re-export it")


def contained(folder: Path, name) -> Path:
    """folder/name, refusing a name that is absolute, not a string, or leads outside the folder."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise EdgekitError(f"{folder}: the manifest names a file {name!r} outside the artifact folder")
    base = Path(folder).resolve()
    path = (base / name).resolve()
    if base not in path.parents:
        raise EdgekitError(f"{folder}: the manifest names a file {name!r} outside the artifact folder")
    return path


def file_checksums(folder: Path, files: dict) -> dict:
    """role -> sha256 of each file of an artifact, for the manifest."""
    from .fsutil import sha256

    return {role: sha256(contained(Path(folder), name)) for role, name in files.items()}


def format_shape(shape: list) -> str:
    """[1, 3, "h", 224] -> "1x3xhx224"; [] -> "scalar"."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _build(tp, value):
    """Rebuild nested dataclasses from plain JSON values using the type hints."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(args[0], value)
    if origin is list:
        (arg,) = typing.get_args(tp) or (None,)
        return [_build(arg, v) for v in value] if arg else list(value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _build(hints[k], v) for k, v in value.items() if k in known})
    return value
