"""`edgekit check`: run the reference (ONNX Runtime fp32 on the original model, or saved goldens) and each
artifact on the same inputs, and report per output how far apart they are and whether that is acceptable."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import EdgekitError
from ..fsutil import sha256
from ..manifest import Manifest, Preprocessing, TensorSpec
from ..onnx.shapes import format_shape
from . import inputs as inputs_mod
from .compare import DEFAULT_TOLERANCES, OutputReport, compare_outputs, metrics, tolerance_for


@dataclass
class ArtifactReport:
    artifact: str
    format: str
    precision: dict  # asked / weights / compute (what the runtime really uses)
    versions: dict
    outputs: list[OutputReport]
    passed: bool
    bisect: dict | None = None


@dataclass
class CheckReport:
    reference: str
    inputs: str
    samples: int
    artifacts: list[ArtifactReport] = field(default_factory=list)
    edgekit: str = __version__

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def tolerances_for(precision: str, atol=None, rtol=None, cos=None) -> dict:
    """Defaults for the precision, overridden by `value` or {output: value} dicts."""
    base = dict(DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"]))
    return {"default": base, "atol": atol or {}, "rtol": rtol or {}, "cos": cos or {}}


def parse_tolerance(values: list[str] | None, what: str) -> dict:
    """['1e-3', 'prob:1e-2'] -> {'*': 1e-3, 'prob': 1e-2}."""
    out = {}
    for v in values or []:
        name, sep, num = v.rpartition(":")
        try:
            out[name if sep else "*"] = float(num)
        except ValueError:
            raise EdgekitError(f"--{what} '{v}': expected a number or NAME:number") from None
    return out


# ---- the reference: ONNX Runtime on the source model, or saved goldens ----

GOLDEN_META = "golden.json"


def source_model(manifest: Manifest, model: str | Path | None) -> Path:
    """The original ONNX: given, or found through the manifest (and checked against its sha256)."""
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise EdgekitError(f"--model {path}: no such file")
        return path
    path = Path(manifest.source.get("path", ""))
    if not path.is_file():
        raise EdgekitError(f"the source model {manifest.source.get('file')} is not at {path} any more; "
                           f"pass it with --model")
    if manifest.source.get("sha256") and sha256(path) != manifest.source["sha256"]:
        raise EdgekitError(f"{path} changed since the artifact was exported (sha256 differs); pass the original "
                           f"with --model")
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
    from ..fsutil import atomic_dir

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


def check(artifacts: list[str | Path], model: str | Path | None = None, data: list | None = None,
          samples: int = 2, preprocessing: Preprocessing | None = None, atol=None, rtol=None, cos=None,
          golden: str | Path | None = None, threads: int | None = None, bisect: bool = False,
          progress=None) -> CheckReport:
    """Compare each artifact with the reference on the same inputs. See `edgekit check --help`."""
    from .. import load

    progress = progress or (lambda msg: None)
    if not artifacts:
        raise EdgekitError("give at least one artifact")
    if samples <= 0:
        raise EdgekitError("--samples must be at least 1")
    runners = [load(a, threads=threads) for a in artifacts]  # fails early on a missing backend
    first = runners[0].manifest
    pre = preprocessing or first.preprocessing
    golden_path = Path(golden) if golden else None
    if golden_path is not None and (golden_path / GOLDEN_META).is_file():
        feeds, refs, meta = load_golden(golden_path)
        reference = f"saved goldens in {golden_path} ({meta.get('reference')})"
        what = meta.get("inputs", "saved inputs")
        check_compatible([TensorSpec(k, str(v.dtype), list(v.shape)) for k, v in feeds[0].items()],
                         runners[0].inputs, "the artifacts")
    else:
        src = source_model(first, model)
        ref_runner = load(src, threads=threads)
        specs = [TensorSpec(s.name, s.dtype, list(s.shape)) for s in runners[0].inputs]
        check_compatible(ref_runner.inputs, specs, "the artifacts")
        feeds, what = inputs_mod.make_samples(specs, data, pre, samples)
        progress("running the ONNX Runtime reference")
        refs = [ref_runner(f) for f in feeds]
        reference = f"ONNX Runtime fp32 on {src}"
        if golden_path is not None:
            save_golden(golden_path, feeds, refs, {"reference": reference, "inputs": what,
                                                   "model_sha256": sha256(src)})
            reference += f" (saved as goldens in {golden_path})"
    report = CheckReport(reference=reference, inputs=what, samples=len(feeds))
    for path, runner in zip(artifacts, runners):
        check_compatible([TensorSpec(k, str(v.dtype), list(v.shape)) for k, v in feeds[0].items()],
                         runner.inputs, str(path))
        progress(f"running {path}")
        outs = [runner(f) for f in feeds]
        m = runner.manifest
        precision = m.precision.requested if m.format != "onnx" else "fp32"
        tol = tolerances_for(precision, atol, rtol, cos)
        outputs = compare_outputs(refs, outs, tol)
        art = ArtifactReport(str(path), m.format, {"requested": m.precision.requested, "weights": m.precision.weights,
                                                   "compute": runner.effective_precision},
                             m.tools, outputs, all(o.passed for o in outputs))
        runner.close()
        if bisect and not art.passed:
            from .bisect import bisect as run_bisect

            progress(f"bisecting {path}")
            failing = next(o for o in outputs if not o.passed)
            worst = int(np.argmin([metrics(r[failing.name], o[failing.name]).cosine for r, o in zip(refs, outs)]))
            art.bisect = run_bisect(Path(path), feeds[worst], model=model, tol=tolerance_for(failing.name, tol),
                                    output=failing.name, progress=progress).to_dict()
        report.artifacts.append(art)
    return report
