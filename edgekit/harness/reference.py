"""The reference side of a comparison: the artifact's original ONNX model (found through its manifest and
checked against the recorded sha256), or saved goldens (inputs and reference outputs in .npz files)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from ..errors import EdgekitError
from ..fsutil import atomic_dir, sha256
from ..manifest import Manifest, TensorSpec, format_shape
from ..onnx.load import load_model
from ..options import spell

GOLDEN_META = "golden.json"


def freeze(model: onnx.ModelProto, values: dict) -> onnx.ModelProto:
    """The model with these inputs frozen to constants (the freeze-inputs pass): export converts it, and the
    reference runs on it too, so artifact and reference see the same constant."""
    from ..onnx.passes import freeze_inputs

    try:
        frozen, _ = freeze_inputs.run(model, values)
    except ValueError as e:
        raise EdgekitError(str(e)) from None
    return frozen


def reference_model(manifest: Manifest, source: Path) -> onnx.ModelProto:
    """The model the artifact's reference runs: the source, with the inputs its export froze (`const`)."""
    model = load_model(source)
    const = manifest.export_options.get("const")
    return freeze(model, {k: np.asarray(v) for k, v in const.items()}) if const else model


def source_model(manifest: Manifest, model: str | Path | None) -> Path:
    """The original ONNX: given, or found through the manifest (and checked against its sha256)."""
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise EdgekitError(f"{spell('model', str(path))}: no such file")
        return path
    path = Path(manifest.source.get("path", ""))
    if not path.is_file():
        raise EdgekitError(f"the source model {manifest.source.get('file')} is not at {path} any more; "
                           f"pass it with {spell('model', 'MODEL.onnx')}")
    if manifest.source.get("sha256") and sha256(path) != manifest.source["sha256"]:
        raise EdgekitError(f"{path} changed since the artifact was exported (sha256 differs); pass the original "
                           f"with {spell('model', 'MODEL.onnx')}")
    return path


def check_compatible(specs: list[TensorSpec], other: list[TensorSpec], what: str) -> None:
    names = [s.name for s in specs]
    if names != [s.name for s in other]:
        raise EdgekitError(f"{what} have inputs {[s.name for s in other]}, the reference takes {names}: "
                           f"artifact and model do not match")
    for a, b in zip(specs, other):
        if a.dtype != b.dtype or len(a.shape) != len(b.shape) or any(
                isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(a.shape, b.shape)):
            raise EdgekitError(f"input '{a.name}': {what} take {b.dtype} {format_shape(b.shape)}, the reference "
                               f"{a.dtype} {format_shape(a.shape)}: artifact and model do not match")


def save_golden(folder: Path, samples: list[dict], outputs: list[dict], meta: dict) -> None:
    with atomic_dir(Path(folder), force=False) as tmp:
        for i, (s, o) in enumerate(zip(samples, outputs)):
            np.savez(tmp / f"sample_{i:03d}.npz", **{f"in:{k}": v for k, v in s.items()},
                     **{f"out:{k}": v for k, v in o.items()})
        (tmp / GOLDEN_META).write_text(json.dumps({**meta, "samples": len(samples)}, indent=2) + "\n")


def load_golden(folder: Path) -> tuple[list[dict], list[dict], dict]:
    folder = Path(folder)
    meta_path = folder / GOLDEN_META
    if not meta_path.is_file():
        raise EdgekitError(f"{folder}: no saved goldens ({GOLDEN_META} missing)")
    meta = json.loads(meta_path.read_text())
    samples, outputs = [], []
    for f in sorted(folder.glob("sample_*.npz")):
        with np.load(f) as z:
            samples.append({k[3:]: z[k] for k in z.files if k.startswith("in:")})
            outputs.append({k[4:]: z[k] for k in z.files if k.startswith("out:")})
    if not samples:
        raise EdgekitError(f"{folder}: no golden samples")
    return samples, outputs, meta
