"""`edgekit check`: run the reference (ONNX Runtime fp32 on the original model, or saved goldens) and each
artifact on the same inputs, and report per output how far apart they are and whether that is acceptable."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..fsutil import sha256
from ..manifest import Preprocessing, TensorSpec
from ..options import spell
from ..runner import load
from ..runner import reference as reference_runner
from ..version import __version__
from . import inputs as inputs_mod
from .bisect import bisect as run_bisect
from .compare import DEFAULT_TOLERANCES, OutputReport, compare_outputs, metrics, tolerance_for
from .quantized_source import allowance, float_rewrite, is_dynamically_quantized
from .reference import GOLDEN_META, check_compatible, load_golden, reference_model, save_golden, source_model


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
    """Defaults for the precision, overridden by {output or "*": value} dicts. An element passes when its error
    is at most atol + rtol x max|ref|; an `atol` given without an `rtol` for the same outputs is the whole
    bound (rtol 0 there), since with the default rtol the relative term would dominate and --atol alone could
    never tighten the check."""
    base = dict(DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"]))
    atol, rtol = dict(atol or {}), dict(rtol or {})
    for name in atol:
        if name not in rtol and "*" not in rtol:
            rtol[name] = 0.0
    return {"default": base, "atol": atol, "rtol": rtol, "cos": cos or {}}


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


def check(artifacts: list[str | Path], model: str | Path | None = None, data: list | None = None,
          samples: int = 2, preprocessing: Preprocessing | None = None, atol=None, rtol=None, cos=None,
          golden: str | Path | None = None, threads: int | None = None, bisect: bool = False,
          progress=None) -> CheckReport:
    """Compare each artifact with the reference (ONNX Runtime fp32 on the original model, or saved goldens) on
    the same inputs.

    Args:
        artifacts: artifact folders and/or .onnx files.
        model: the original ONNX model (default: the one the first artifact's manifest names, checked by sha256).
        data: inputs: image files or folders (through the preprocessing) or .npy/.npz; default generated.
        samples: how many input samples.
        preprocessing: how images become inputs (default: the first artifact's manifest).
        atol, rtol, cos: tolerances instead of the precision's defaults: a number, or {output name: number}.
            Without them, a dynamically quantized source widens the defaults by its own quantization gap,
            as export does.
        golden: a folder of saved goldens to compare with (or, if empty, to save the reference into).
        threads: runtime threads.
        bisect: for each failing artifact, find the first ONNX node whose output diverges.
        progress: called with a line of text as the check runs.

    Returns:
        a CheckReport (`.passed`, per artifact and output: errors, cosine, SNR, top-k agreement, verdict).

    Raises:
        EdgekitError: bad input (paths, sample counts, artifacts that do not match the reference model).
    """
    progress = progress or (lambda msg: None)
    if not artifacts:
        raise EdgekitError("give at least one artifact")
    if samples <= 0:
        raise EdgekitError(f"{spell('samples')} must be at least 1")
    runners = [load(a, threads=threads) for a in artifacts]  # fails early on a missing backend
    first = runners[0].manifest
    pre = preprocessing or first.preprocessing
    golden_path = Path(golden) if golden else None
    rewrite: tuple = (None, {}, False)  # a dynamically quantized source: quantized_source.float_rewrite
    if golden_path is not None and (golden_path / GOLDEN_META).is_file():
        feeds, refs, meta = load_golden(golden_path)
        reference = f"saved goldens in {golden_path} ({meta.get('reference')})"
        what = meta.get("inputs", "saved inputs")
        check_compatible([TensorSpec(k, str(v.dtype), list(v.shape)) for k, v in feeds[0].items()],
                         runners[0].inputs, "the artifacts")
    else:
        src = source_model(first, model)
        ref_model = reference_model(first, src)
        ref_runner = reference_runner(ref_model, threads, name=src.name)
        specs = [TensorSpec(s.name, s.dtype, list(s.shape)) for s in runners[0].inputs]
        check_compatible(ref_runner.inputs, specs, "the artifacts")
        feeds, what = inputs_mod.make_samples(specs, data, pre, samples)
        frozen = first.export_options.get("const") or {}  # data may still hold an input the export froze
        feeds = [{k: v for k, v in f.items() if k not in frozen} for f in feeds]
        progress("running the ONNX Runtime reference")
        refs = [ref_runner(f) for f in feeds]
        reference = f"ONNX Runtime fp32 on {src}"
        if golden_path is not None:
            save_golden(golden_path, feeds, refs, {"reference": reference, "inputs": what,
                                                   "model_sha256": sha256(src)})
            reference += f" (saved as goldens in {golden_path})"
        if is_dynamically_quantized(ref_model) and not (atol or rtol or cos):
            rewrite = float_rewrite(ref_model, feeds)  # judged as export judged it (harness/quantized_source.py)
    report = CheckReport(reference=reference, inputs=what, samples=len(feeds))
    for path, runner in zip(artifacts, runners):
        check_compatible([TensorSpec(k, str(v.dtype), list(v.shape)) for k, v in feeds[0].items()],
                         runner.inputs, str(path))
        progress(f"running {path}")
        outs = [runner(f) for f in feeds]
        m = runner.manifest
        precision = m.precision.requested if m.format != "onnx" else "fp32"
        tol = tolerances_for(precision, atol, rtol, cos)
        tol = allowance(tol, refs, rewrite, m.passes)  # the rule export applies
        outputs = compare_outputs(refs, outs, tol)
        art = ArtifactReport(str(path), m.format, {"requested": m.precision.requested, "weights": m.precision.weights,
                                                   "compute": runner.effective_precision},
                             m.tools, outputs, all(o.passed for o in outputs))
        runner.close()
        if bisect and not art.passed:
            progress(f"bisecting {path}")
            failing = next(o for o in outputs if not o.passed)
            worst = int(np.argmin([metrics(r[failing.name], o[failing.name]).cosine for r, o in zip(refs, outs)]))
            art.bisect = run_bisect(Path(path), feeds[worst], model=model, tol=tolerance_for(failing.name, tol),
                                    output=failing.name, progress=progress).to_dict()
        report.artifacts.append(art)
    return report
