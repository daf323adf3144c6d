"""The export flow (docs/architecture.md, "Export"): validate everything first, fix shapes, then per format climb
the backend's conversion ladder: normalise, convert in a scratch folder, load the result with its runtime and
verify it against ONNX Runtime fp32 on the original model, until a rung passes; write the manifest and only then
move the artifact into place. A failed format leaves nothing behind and says what each rung hit."""
from __future__ import annotations

import dataclasses
import datetime
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from . import backends, native
from . import targets as targets_mod
from .backends.base import ConvertOptions, Recipe
from .errors import EdgekitError, ModelError
from .fsutil import atomic_dir, check_destination, check_writable_dir, sha256
from .harness import compare
from .harness import inputs as inputs_mod
from .harness.quantized_source import allowance, float_rewrite, is_dynamically_quantized
from .harness.reference import freeze
from .manifest import Manifest, OutputCheck, Preprocessing, TensorSpec, Verification, file_checksums
from .onnx import inspect
from .onnx import passes as passes_mod
from .onnx.load import load_model
from .onnx.shapes import fix_input_shapes, parse_shape_args, require_static, resolve_input_shapes
from .options import spell
from .runner import open_artifact
from .runner import reference as reference_runner
from .version import __version__

PRECISIONS = ("fp32", "fp16", "int8")
MAX_CALIBRATION = 64  # calibration samples used at most (ncnn2table's histograms settle well before)


@dataclass
class ExportResult:
    format: str
    path: Path | None = None
    ok: bool = False
    manifest: Manifest | None = None
    error: str | None = None
    log_tail: str = ""
    seconds: float = 0.0
    workdir: Path | None = None
    recipe: str | None = None  # the ladder rung that made the artifact
    attempts: list[dict] = field(default_factory=list)  # every rung tried: recipe, passes, status, error, seconds

    @property
    def conversions(self) -> int:
        return sum(1 for a in self.attempts if a["status"] != "skipped")

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "inaccurate" if self.manifest is not None else "failed"


@dataclass
class Reference:
    """Verification inputs and the reference outputs (ONNX Runtime fp32 on the original model)."""

    samples: list[dict]
    outputs: list[dict]
    source: str
    shapes: list = field(default_factory=list)


@dataclass
class ExportJob:
    """What one export decided before converting, shared by every format it converts to."""

    inputs: list[TensorSpec]  # the shape-fixed model's inputs
    outputs: list[TensorSpec]  # its outputs, with the shapes and dtypes the reference run showed
    reference: Reference
    source: dict  # the manifest's `source`
    options: dict  # the manifest's `export_options`
    precision: str
    tolerances: dict
    preprocessing: Preprocessing | None
    labels: list[str] | None
    force: bool
    keep_workdir: bool
    keep_inaccurate: bool
    dynamic_shapes: list[dict] | None  # the verification shapes of a dynamic export, else None
    scratch: Path
    progress: Callable[[str, str], None]
    fixed: onnx.ModelProto  # the shape-fixed model every rung starts from
    calibration: list[dict] | None = None  # int8: the calibration samples (never the verification ones)
    max_drop: float = 0.01
    normalized: dict = field(default_factory=dict)  # passes -> (path, applied, digest): one model per pass list
    quantization: tuple | None = None  # a dynamically quantized source: its float rewrite's outputs, the steps
    lint: list | None = None  # fp16/int8: the pre-flight findings, recorded in each manifest's precision

    def accept(self, refs: list[dict], outs: list[dict]) -> compare.Verdict:
        """The gate `verify` applies, on any samples (int8 quantizers run it on the calibration set)."""
        return compare.Verdict(compare.compare_outputs(refs, outs, self.tolerances))

    def normalize(self, passes: tuple[str, ...]) -> tuple[Path, list[str], str]:
        """The shape-fixed model with these passes applied (once per export), its applied passes and digest."""
        if passes not in self.normalized:
            copy = onnx.ModelProto()
            copy.CopyFrom(self.fixed)
            # registry order, whatever order a recipe lists them in: dequantize-dynamic must turn a
            # DynamicQuantizeLSTM into an LSTM before rnn-unroll looks for LSTMs
            model, applied = passes_mod.apply(copy, passes_mod.ordered(passes))
            path = self.scratch / f"normalized-{len(self.normalized)}.onnx"
            onnx.save(model, str(path))
            self.normalized[passes] = (path, applied, sha256(path))
        return self.normalized[passes]

    def tolerances_for(self, passes: list[str]) -> dict:
        """One rung's verification tolerance: the export's, or for a dynamically quantized source that widened
        by the source's own quantization gap (harness/quantized_source.allowance, the rule `check` applies)."""
        if not is_dynamically_quantized(self.fixed):
            return self.tolerances
        if self.quantization is None:
            self.quantization = float_rewrite(self.fixed, self.reference.samples)
        return allowance(self.tolerances, self.reference.outputs, self.quantization, passes)


def export(model: str | Path, target: str = "all", *, out: str | Path | None = None,
           input_shapes: dict | list | None = None, precision: str | None = None, dynamic: bool = False,
           data: list | None = None, samples: int = 2, preprocessing: Preprocessing | None = None,
           labels: list[str] | None = None, tolerances: dict | None = None, passes: list[str] | None = None,
           recipe: str | None = None, const: dict | list | None = None, calib: list | None = None,
           max_drop: float = 0.01, metric: str | list | dict | None = None, force: bool = False,
           keep_workdir: bool = False, keep_inaccurate: bool = False,
           progress: Callable[[str, str], None] | None = None) -> list[ExportResult]:
    """Convert an ONNX model to every format of a target and verify each artifact against ONNX Runtime.

    Args:
        model: the .onnx file.
        target: a format ("ncnn", "mnn", "tflite", "openvino", "onnx"), a comma list, "all", or a device
            profile name (`edgekit targets`).
        out: the folder for the artifacts, one `<model>_<format>/` each (default: the current folder).
        input_shapes: static shapes for dynamic inputs, ["x:1x3x48x192"] or {"x": [1, 3, 48, 192]}; a dynamic
            batch axis alone becomes 1.
        precision: "fp32" (default, or the profile's), "fp16" or "int8"; verification runs at this precision.
        dynamic: keep the model's dynamic axes (not the batch) in the formats whose backend can; `input_shapes`
            then gives the typical size, and verification runs there and at a second size.
        data: verification inputs: image files or folders (through `preprocessing`) or .npy/.npz files;
            default: generated inputs with sensible ranges.
        samples: how many verification samples to use.
        preprocessing: how an image becomes the model's input; stored in the manifest for run/check/pipelines.
        labels: class labels, stored in the manifest.
        tolerances: {"cos": .., "atol": .., "rtol": ..} instead of the precision's defaults.
        passes: the normalisation passes to run (names in `edgekit.onnx.passes.REGISTRY`, in the order given)
            as the only recipe; [] hands the converters the shape-fixed model untouched (the raw converters).
            None (default): each backend's conversion ladder, rung by rung, keeping the first artifact that
            converts and verifies.
        recipe: force one rung of each backend's ladder by name ("default", "raw", ...).
        calib: int8 calibration data: image files or folders (through `preprocessing`) or .npy/.npz. The
            verification (the accuracy gate) runs on `data`, or, without it, on a quarter of the calibration
            samples held out from calibrating.
        max_drop: int8 accuracy budget: each output's cosine to ONNX Runtime fp32 at least 1 - max_drop and
            class scores keeping their top-1 in that fraction of rows; layers move back to float until it holds.
        metric: what the fp16/int8 drop is judged by instead, per output kind: "cosine" (the default rule),
            "top1" (argmax agreement of class-score rows: a classifier), "ctc" / "ctc@B" (a CTC recogniser's
            greedy-decoded text against the reference's, blank class B, default 0), "mask@T" (IoU of the
            output thresholded at T, e.g. a probability map) or "BOXES=boxes@SCORES>T" (the mean IoU of a
            centre-size box regressor's rows whose reference score is above T); "OUTPUT=KIND" for one output, a list or
            {output: kind} for several. The output passes when the metric over the samples is >= 1 - max_drop;
            the quantizers' repair loop and the final verification use it, and the manifest records it.
        const: inputs that are constant in deployment, frozen to their value before converting
            (["sr=16000"] or {"sr": 16000}); `If` branches on them fold away, and they leave the artifact's
            inputs (a 0-d sample-rate input, a mode flag).
        force: replace existing artifacts.
        keep_workdir: keep each converter's scratch folder (its path is in the result).
        keep_inaccurate: keep an artifact that converted but failed verification, marked failing, for
            `edgekit check --bisect`.
        progress: called as progress(format, stage) while the export runs ("*" for shared stages).

    Returns:
        one ExportResult per format, in the target's order; `.ok`, `.path`, `.manifest`, `.error`.

    Raises:
        EdgekitError: bad input (missing or corrupt model, unknown target, bad shapes, missing backend, an
            existing output without `force`), before anything is written. A format that fails to convert or
            verify is reported in its result and leaves no artifact.
    """
    progress = progress or (lambda fmt, stage: None)
    model_path = Path(model)
    plan = targets_mod.resolve(target)
    precision = precision or plan.precision or "fp32"
    if precision not in PRECISIONS:
        raise EdgekitError(f"unknown precision '{precision}'; use one of: {', '.join(PRECISIONS)}")
    lacking = [f for f in plan.formats if precision not in backends.get(f).precisions]
    if lacking:
        able = [f for f in backends.formats() if f in backends.BUILTIN and precision in backends.get(f).precisions]
        raise EdgekitError(f"{precision} is not available for {', '.join(lacking)} here; formats with {precision}: "
                           f"{', '.join(able)}")
    if precision == "int8":
        if not calib:
            raise EdgekitError(f"int8 needs calibration data: give {spell('calib', 'DIR')} with images (or .npy/"
                               ".npz) like those the model sees in deployment")
        if not 0 < max_drop < 1:
            raise EdgekitError(f"{spell('max_drop', str(max_drop))}: the accuracy budget is a fraction in (0, 1), "
                               "e.g. 0.01 for 1%")
        if dynamic:
            raise EdgekitError(f"int8 needs static shapes; export without {spell('dynamic')}")
    if metric and precision == "fp32":
        raise EdgekitError(f"{spell('metric', str(metric))} judges the fp16/int8 drop; fp32 is verified with the "
                           f"fp32 tolerance (give {spell('precision', 'fp16')} or int8, or leave the metric out)")
    if metric and not 0 < max_drop < 1:
        raise EdgekitError(f"{spell('max_drop', str(max_drop))}: the accuracy budget is a fraction in (0, 1), "
                           "e.g. 0.01 for 1%")
    if isinstance(input_shapes, list):
        input_shapes = parse_shape_args(input_shapes)
    out_dir = Path(out) if out is not None else Path.cwd()
    dests = {fmt: out_dir / f"{model_path.stem}_{fmt}" for fmt in plan.formats}
    for fmt in plan.formats:
        backends.get(fmt).require(convert=True)
        backends.get(fmt).require_precision(precision)
    ladders = {fmt: _ladder(backends.get(fmt), passes, recipe) for fmt in plan.formats}
    original = load_model(model_path)
    frozen = parse_const(const, original)
    if frozen:
        original = freeze(original, frozen)
    shapes = resolve_input_shapes(original, input_shapes or {})
    verify_shapes = [shapes]
    if dynamic:
        verify_shapes = _verification_shapes(original, shapes)
        shapes = resolve_input_shapes(original, {})  # the model keeps its dynamic axes
    else:
        require_static(shapes, "the converters need static shapes")
    check_writable_dir(out_dir, "the output folder")  # before the reference runs, not after
    for dest in dests.values():
        check_destination(dest, force)

    progress("*", "preparing the model")
    fixed = fix_input_shapes(original, shapes)
    ins = inspect.graph_inputs(fixed)
    calibration, held_out = _calibration_set(ins, calib, data, preprocessing) if precision == "int8" else (None, None)
    reference = None
    for vs in verify_shapes:  # one reference per verification shape (two or more for a dynamic export)
        at = [TensorSpec(s.name, s.dtype, list(vs[s.name])) for s in ins]
        ref = _reference(original, model_path.name, at, data, preprocessing, samples, progress, set(frozen),
                         held_out)
        if len(verify_shapes) > 1:
            ref.source = f"at {', '.join('x'.join(map(str, d)) for d in vs.values())}: {ref.source}"
        reference = ref if reference is None else Reference(
            reference.samples + ref.samples, reference.outputs + ref.outputs, f"{reference.source}; {ref.source}",
            reference.shapes + ref.shapes)
    outs = inspect.graph_outputs(fixed)
    for spec in outs:  # the reference run knows the true output shapes, whatever inference left dynamic
        seen = [list(o[spec.name].shape) for o in reference.outputs]
        spec.shape = [d if all(s[i] == d for s in seen) else f"{spec.name}_{i}" for i, d in enumerate(seen[0])]
        spec.dtype = reference.outputs[0][spec.name].dtype.name
    source = {"file": model_path.name, "path": str(model_path.resolve()), "sha256": sha256(model_path),
              "opset": inspect.opset(original), "producer": inspect.summary(original)["producer"]}
    options = {"target": target, "precision": precision, "input_shapes": shapes, "threads": plan.threads}
    if dynamic:
        options["dynamic"] = True
    if frozen:
        options["const"] = {k: v.tolist() for k, v in frozen.items()}
    tol = dict(tolerances or compare.DEFAULT_TOLERANCES[precision])
    if precision == "int8":
        options.update(calib=[str(c) for c in calib], max_drop=max_drop, calibration_samples=len(calibration))
        if not tolerances:  # the gate is the user's budget
            tol.update(cos=1 - max_drop, top1=1 - max_drop)
    judged = compare.parse_metric(metric, {s.name: s.shape for s in outs})
    if judged:
        (tol["default"] if "default" in tol else tol).update(metric=judged, metric_min=1 - max_drop)
        options.update(metric=judged, max_drop=max_drop)

    results = []
    with tempfile.TemporaryDirectory(prefix="edgekit-") as scratch:
        job = ExportJob(ins, outs, reference, source, options, precision, tol, preprocessing, labels, force,
                        keep_workdir, keep_inaccurate, verify_shapes if dynamic else None, Path(scratch), progress,
                        fixed, calibration, max_drop)
        job.lint = _lint(fixed, calibration or reference.samples, precision, progress)
        for fmt in plan.formats:
            results.append(_export_one(fmt, ladders[fmt], dests[fmt], job))
    return results


def _lint(model: onnx.ModelProto, samples: list[dict], precision: str, progress) -> list | None:
    """fp16/int8: the pre-flight lint on the fp32 model's statistics, each finding shown as progress."""
    if precision not in ("fp16", "int8"):
        return None
    from .quantize import lint

    progress("*", "pre-flight lint of the fp32 model's activations")
    findings = lint.lint(model, samples, precision)
    for f in findings:
        progress("*", "lint: " + lint.message(f))
    return findings


def _ladder(backend, passes: list[str] | None, recipe: str | None) -> tuple[Recipe, ...]:
    """The rungs to try for one format: the backend's ladder, one rung of it by name, or the caller's passes."""
    if passes is not None:
        if recipe is not None:
            raise EdgekitError("give passes or a recipe, not both")
        passes_mod.ordered(passes)  # refuses unknown names before any work
        return (Recipe("custom" if passes else "raw", tuple(passes)),)
    ladder = backend.ladder
    for rung in ladder:
        passes_mod.ordered(rung.passes)  # a backend naming an unknown pass fails here, before any work
    if recipe is None:
        return ladder
    chosen = [r for r in ladder if r.name == recipe]
    if not chosen:
        raise EdgekitError(f"{backend.name} has no recipe '{recipe}'; its ladder: {', '.join(r.name for r in ladder)}")
    return tuple(chosen)


def _export_one(fmt: str, ladder: tuple[Recipe, ...], dest: Path, job: ExportJob) -> ExportResult:
    """Convert and verify rung by rung; place the first artifact that passes (or, with keep_inaccurate, the
    most accurate one) at `dest`. A rung whose passes leave the model as an earlier rung had it is skipped; a
    failure that no rung can change (bad input, a backend that cannot keep dynamic axes) stops the ladder."""
    backend = backends.get(fmt)
    result = ExportResult(fmt)
    fmt_dir = Path(tempfile.mkdtemp(prefix=f"edgekit-{fmt}-")) if job.keep_workdir else job.scratch / fmt
    start = time.perf_counter()
    tried: dict[tuple, str] = {}  # (model digest, converter options) -> the rung that converted it
    kept: tuple[Path, Manifest] | None = None  # the most accurate inaccurate artifact so far
    errors: list[tuple[str, str, str]] = []  # (rung, error, log tail)
    try:
        if job.dynamic_shapes and not backend.dynamic:
            name = next(s.name for s in job.inputs if not all(isinstance(d, int) for d in s.shape))
            example = "x".join(map(str, job.dynamic_shapes[0][name]))
            raise EdgekitError(f"{backend.runtime} cannot keep dynamic axes ({backend.dynamic_why}); export this "
                               f"format with static shapes instead: {spell('input_shapes', f'{name}:{example}')} "
                               f"without {spell('dynamic')}")
        for k, rung in enumerate(ladder):
            t0 = time.perf_counter()
            attempt = {"recipe": rung.name, "passes": list(rung.passes), "status": "failed", "error": None}
            result.attempts.append(attempt)
            if rung.for_ops and not set(rung.for_ops) & {n.op_type for n in job.fixed.graph.node}:
                attempt.update(status="skipped", error=f"for models with {', '.join(rung.for_ops)}")
                continue
            model_path, applied, digest = job.normalize(rung.passes)
            same = tried.get((digest, rung.converter))
            if same is not None:
                attempt.update(status="skipped", error=f"the same model as recipe {same}")
                continue
            tried[(digest, rung.converter)] = rung.name
            attempt["applied"] = list(applied)
            step = f" (recipe {rung.name}, {k + 1}/{len(ladder)})" if len(ladder) > 1 else ""
            folder = fmt_dir / rung.name
            try:
                manifest = _convert_and_verify(backend, rung, model_path, applied, folder, job, step)
            except ModelError as e:
                attempt["error"] = str(e)
                errors.append((rung.name, str(e), getattr(e, "log_tail", "") or "\n".join(native.recent()[-8:])))
                continue
            except EdgekitError:
                raise
            except Exception as e:  # a converter or runtime crashed in our process: report, try the next rung
                attempt["error"] = f"{type(e).__name__}: {e}"
                errors.append((rung.name, attempt["error"], traceback.format_exc(limit=4)))
                continue
            finally:
                attempt["seconds"] = round(time.perf_counter() - t0, 3)
            v = manifest.verification
            attempt["status"] = "ok" if v.passed else "inaccurate"
            if v.passed:
                _place(folder / "artifact", manifest, dest, job, result)
                result.ok, result.path = True, dest
                break
            failure = "converted but wrong against ONNX Runtime: " + _failures(manifest)
            attempt["error"] = failure
            errors.append((rung.name, failure, ""))
            if kept is None or _worst_cosine(manifest) > _worst_cosine(kept[1]):
                kept = (folder, manifest)
                result.manifest = manifest
        else:
            result.error = _diagnosis(fmt, errors)
            result.log_tail = next((t for _, _, t in errors if t), "")
            if kept is not None and job.keep_inaccurate:  # marked failing in its manifest, for --bisect
                folder, manifest = kept
                _place(folder / "artifact", manifest, dest, job, result)
                result.path = dest
                result.error = result.error.replace(f"{fmt}: ", f"{fmt}: (kept as asked) ", 1)
    except EdgekitError as e:
        result.error = f"{fmt}: {e}"
    result.seconds = time.perf_counter() - start
    if job.keep_workdir:
        result.workdir = fmt_dir
    else:
        shutil.rmtree(fmt_dir, ignore_errors=True)
    return result


def _convert_and_verify(backend, rung: Recipe, model_path: Path, applied: list[str], folder: Path, job: ExportJob,
                        step: str) -> Manifest:
    """One rung: convert into folder/artifact (scratch in folder/work), load it through the door, verify it."""
    fmt = backend.name
    art, work = folder / "artifact", folder / "work"
    art.mkdir(parents=True)
    work.mkdir()
    job.progress(fmt, f"converting with {backend.runtime}{step}")
    conv = backend.convert(model_path, art, [_copy(s) for s in job.inputs], [_copy(s) for s in job.outputs],
                           ConvertOptions(precision=job.precision, workdir=work,
                                          calibration=_calibration(job.reference.samples),
                                          shapes=job.dynamic_shapes, converter=dict(rung.converter),
                                          calibration_samples=job.calibration, max_drop=job.max_drop,
                                          preprocessing=job.preprocessing, accept=job.accept))
    manifest = Manifest(
        format=fmt, files=conv.files, source=job.source, inputs=conv.inputs, outputs=conv.outputs,
        precision=conv.precision, export_options=job.options, tools={"edgekit": __version__, **conv.tools},
        passes=list(applied), recipe=rung.name, preprocessing=job.preprocessing, labels=job.labels,
        checksums=file_checksums(art, conv.files),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    manifest.precision.lint = job.lint
    job.progress(fmt, f"verifying against ONNX Runtime{step}")
    runner = open_artifact(art, manifest, threads=job.options.get("threads"), files_checked=True)
    manifest.precision.compute = runner.effective_precision  # what the runtime really chose
    manifest.verification = verify(runner, job.reference, job.tolerances_for(list(applied)), job.precision)
    return manifest


def _place(art: Path, manifest: Manifest, dest: Path, job: ExportJob, result: ExportResult) -> None:
    """Move a rung's artifact to `dest` in one rename, with the manifest recording the ladder as tried."""
    manifest.attempts = [dict(a) for a in result.attempts]
    with atomic_dir(dest, job.force) as tmp:
        for f in art.iterdir():
            shutil.move(str(f), tmp / f.name)
        manifest.save(tmp)
    result.manifest, result.recipe = manifest, manifest.recipe


def _worst_cosine(manifest: Manifest) -> float:
    return min((o.cosine for o in manifest.verification.outputs), default=-1.0)


def _diagnosis(fmt: str, errors: list[tuple[str, str, str]]) -> str:
    """One line for a format whose every rung failed: each rung's error, the one that got furthest first
    (a converted-but-wrong artifact is further than a failed conversion), and what to try."""
    if len(errors) == 1:
        rung, error, _ = errors[0]
        return error if error.startswith(f"{fmt}:") else f"{fmt}: {error}"
    ranked = sorted(errors, key=lambda e: "converted but wrong" not in e[1])
    parts = "; ".join(f"recipe {rung}: {error.removeprefix(f'{fmt}: ')}" for rung, error, _ in ranked)
    if "converted but wrong" in ranked[0][1]:
        hint = (f"Export with {spell('recipe', ranked[0][0])} and {spell('keep_inaccurate')} to keep that "
                "artifact for `edgekit check --bisect`, which finds the first diverging node; or try another format")
    else:
        hint = "Try another format (`edgekit export MODEL --target all` shows which convert it)"
    return f"{fmt}: no recipe gave a correct artifact ({len(errors)} tried) - {parts}. {hint}"


def _calibration(samples: list[dict]) -> dict:
    """Input name -> the samples stacked along the batch axis (0-d inputs stacked into a vector), from the
    samples that share the first one's shapes; for converters that want realistic data (onnx2tf)."""
    first = [s for s in samples if all(v.shape == samples[0][k].shape for k, v in s.items())]
    return {k: np.stack([s[k] for s in first]) if samples[0][k].ndim == 0 else np.concatenate([s[k] for s in first])
            for k in samples[0]}


def _verification_shapes(model, typical: dict) -> list[dict]:
    """For a dynamic export: the typical shape (from `input_shapes`) and a second one with every dynamic axis
    at 5/4, 3/2, 5/4, ... of its size (so a square input becomes oblong; growing, since a smaller size can
    leave a pooling window larger than its input), rounded down to the largest power-of-two factor (up to 32)
    that divides the typical size, so strided models still divide evenly."""
    from .manifest import format_shape
    from .onnx.shapes import dynamic_inputs

    declared = resolve_input_shapes(model, {})
    if not dynamic_inputs(declared):
        raise EdgekitError(f"{spell('dynamic')}: the model has no dynamic axes besides the batch; nothing to "
                           "keep (export without it)")
    missing = dynamic_inputs(typical)
    if missing:
        name, dims = next(iter(missing.items()))
        example = "x".join(str(d) if isinstance(d, int) else "N" for d in dims)
        raise EdgekitError(f"{spell('dynamic')} keeps input '{name}' {format_shape(dims)} dynamic, and verification "
                           f"needs a typical size for it: add {spell('input_shapes', f'{name}:{example}')}")
    second, k = {}, 0
    for name, dims in typical.items():
        alt = []
        for want, have in zip(dims, declared[name]):
            if isinstance(have, int) or want <= 1:
                alt.append(want)
                continue
            step, (num, den) = min(want & -want, 32), ((5, 4), (3, 2))[k % 2]
            alt.append(max(step, (want * num // den) // step * step))
            k += 1
        second[name] = alt
    if second == typical:  # sizes too small for the fractions to move: grow the last dynamic axis one step
        name = next(n for n in reversed(list(typical)) if n in dynamic_inputs(declared))
        axis = max(i for i, d in enumerate(declared[name]) if not isinstance(d, int))
        second[name] = list(typical[name])
        second[name][axis] += min(typical[name][axis] & -typical[name][axis], 32)
    return [typical, second]


def _failures(manifest) -> str:
    tol = manifest.verification.tolerances
    bad = [o for o in manifest.verification.outputs if not o.passed]
    t = compare.tolerance_for(bad[0].name, tol)
    basis = f"; tolerance: {tol['basis']}" if tol.get("basis") else ""
    judged = [o for o in bad if o.metric and o.metric != "cosine"]
    if judged:  # a task metric decided: name it, its value and the drop
        need = compare.tolerance_for(judged[0].name, tol)["metric_min"]
        return ("; ".join(f"output '{o.name}': {o.metric} {o.metric_value:.4f} (drop {o.drop:.2%}; cosine "
                          f"{o.cosine:.6f})" for o in judged)
                + f" (the gate needs {judged[0].metric} >= {need:.4g}, a drop within {1 - need:.2%})")
    return ("; ".join(f"output '{o.name}': cosine {o.cosine:.6f}, max abs error {o.max_abs:.3g}" for o in bad)
            + f" (needs cosine >= {t['cos']:.6g}, 99.9% of elements within {t['atol']:.3g} + {t['rtol']} x max|ref|"
              f" and class scores keeping their top-1{basis}; `edgekit check --bisect` finds the node)")


def _copy(spec):
    from dataclasses import replace

    return replace(spec, shape=list(spec.shape))


def _calibration_set(ins, calib, data, preprocessing) -> tuple[list[dict], tuple[list[dict], str] | None]:
    """int8: the calibration samples, and (without `data`) a quarter of them held out for the gate."""
    static = [TensorSpec(s.name, s.dtype, [d if isinstance(d, int) else 1 for d in s.shape]) for s in ins]
    feeds, what = inputs_mod.make_samples(static, calib, preprocessing, MAX_CALIBRATION)
    if data:
        return feeds, None
    if len(feeds) < 2:
        raise EdgekitError(f"int8: {what} is one sample; give more calibration data, or held-out verification "
                           f"inputs with {spell('data', 'FILES')}")
    k = max(1, len(feeds) // 4)
    return feeds[:-k], (feeds[-k:], f"{k} calibration sample(s) held out from calibrating ({what})")


def _reference(original, name, ins, data, preprocessing, samples, progress, frozen=frozenset(),
               given: tuple[list[dict], str] | None = None) -> Reference:
    feeds, what = given or inputs_mod.make_samples(ins, data, preprocessing, max(samples, 1))
    feeds = [{k: v for k, v in f.items() if k not in frozen} for f in feeds]  # data may still hold a const input
    progress("*", "running the ONNX Runtime reference")
    ref = reference_runner(original, name=name)
    try:
        outputs = [ref(f) for f in feeds]
    except Exception as e:  # ONNX Runtime refusing these inputs: a constant input may need its real value
        scalars = [s.name for s in ins if not s.shape]
        hint = (f"; or freeze an input that is constant in deployment with {spell('const', scalars[0] + '=VALUE')}"
                if scalars else "")
        if isinstance(e, EdgekitError):  # the runner's own line (it names the inputs and the failing node)
            raise EdgekitError(f"{e}{hint}") from None
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise EdgekitError(f"ONNX Runtime cannot run the model on {what} ({first}); give real inputs with "
                           f"{spell('data', 'FILES')}{hint}") from None
    return Reference(feeds, outputs, what, [[list(v.shape) for v in f.values()] for f in feeds])


def parse_const(const: dict | list | None, model: onnx.ModelProto) -> dict:
    """["sr=16000", "mode=1,0"] or {"sr": 16000} -> {input name: array in the input's dtype}."""
    if not const:
        return {}
    items = dict(c.split("=", 1) if "=" in c else (c, None) for c in const) if isinstance(const, list) else const
    specs = {s.name: s for s in inspect.graph_inputs(model)}
    out = {}
    for name, value in items.items():
        if name not in specs:
            raise EdgekitError(f"{spell('const', f'{name}=...')}: the model has no input '{name}'; its inputs: "
                               f"{', '.join(specs)}")
        if value is None or value == "":
            raise EdgekitError(f"{spell('const', f'{name}=VALUE')}: give the value the input has in deployment")
        try:
            parsed = [float(v) for v in value.split(",")] if isinstance(value, str) else value
            arr = np.asarray(parsed, dtype=specs[name].dtype)
        except (TypeError, ValueError):
            raise EdgekitError(f"{spell('const', f'{name}={value}')}: not a number or a comma list of numbers") \
                from None
        out[name] = arr.reshape(()) if arr.size == 1 and not specs[name].shape else arr
    return out


def verify(runner, reference: Reference, tol: dict, precision: str) -> Verification:
    try:
        outs = [runner(f) for f in reference.samples]
    finally:
        runner.close()
    # the manifest keeps the core metrics (OutputCheck); `edgekit check` reports the rest
    checks = [OutputCheck(**{f.name: getattr(c, f.name) for f in dataclasses.fields(OutputCheck)})
              for c in compare.compare_outputs(reference.outputs, outs, tol)]
    return Verification(passed=all(c.passed for c in checks), precision=precision, inputs=reference.source,
                        samples=len(reference.samples), tolerances=tol, outputs=checks, shapes=reference.shapes)
