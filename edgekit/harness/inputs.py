"""Input data for verification: real images through the manifest's preprocessing, .npy files, or generated
data with sensible ranges. Random N(0,1) noise through an image model gives false alarms (tiny activations,
saturated softmaxes), so generated image inputs are synthetic pictures put through the preprocessing."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..manifest import Preprocessing, TensorSpec, format_shape
from ..options import spell
from ..preprocess import DEFAULT_PREPROCESSING, IMAGE_SUFFIXES, prepare, read_image, synthetic_image


def is_image_input(spec: TensorSpec) -> bool:
    s = spec.shape
    return spec.dtype == "float32" and len(s) == 4 and (s[1] in (1, 3) or s[-1] in (1, 3))


def load_npy(path: Path, what: str = "") -> np.ndarray:
    """A .npy file as an array, or one line naming the file when it is not a numeric array: pickled object
    arrays are refused (loading them would run code from the file), and so is anything else."""
    return _load_numpy(path, what, ".npy", lambda: np.load(path, allow_pickle=False))


def _load_npz(path: Path) -> dict:
    def read():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    return _load_numpy(path, "", ".npz", read)


_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK\x03\x04"}


def _load_numpy(path: Path, what: str, kind: str, read):
    where = f"{what}: {path}" if what else str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MAGIC[kind]))
    except OSError as e:
        raise EdgekitError(f"{where}: cannot be read ({e.strerror or _first_line(e)})") from None
    if head != _MAGIC[kind]:
        raise EdgekitError(f"{where}: not a {kind} file (no NumPy {kind} header); save arrays with "
                           f"numpy.{'save' if kind == '.npy' else 'savez'}")
    try:
        return read()
    except ValueError as e:
        why = ("holds pickled Python objects (an object array), which edgekit does not load; save a numeric array"
               if "pickle" in str(e) else f"is damaged ({_first_line(e)})")
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        why = f"is damaged ({_first_line(e)})"
    raise EdgekitError(f"{where}: {kind} file {why}")


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


# Generated or loaded inputs may take at most this share of the memory available now.
MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes of memory available now."""
    import psutil

    return psutil.virtual_memory().available


def check_input_memory(specs: list[TensorSpec], samples: int) -> None:
    """Refuse inputs whose claimed shapes need more memory than the machine has, before allocating any."""
    per_sample = 0
    for spec in specs:
        n = 1
        for d in spec.shape:
            n *= d if isinstance(d, int) and d > 0 else 1
        per_sample += n * np.dtype(spec.dtype).itemsize
    need, avail = per_sample * max(samples, 1), available_memory()
    if need > MEMORY_SHARE * avail:
        shapes = ", ".join(f"{s.name} {format_shape(s.shape)}" for s in specs)
        raise EdgekitError(f"the inputs ({shapes}; {max(samples, 1)} sample(s)) need {need / 2**30:.1f} GiB, more "
                           f"than half of the {avail / 2**30:.1f} GiB of memory available; give a smaller "
                           f"{spell('input_shapes')}")


def generated_inputs(specs: list[TensorSpec], pre: Preprocessing | None, seed: int = 0) -> tuple[dict, str]:
    """One sample of generated inputs, and a sentence saying what they are."""
    rng = np.random.default_rng(seed)
    feeds, what = {}, []
    for spec in specs:
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        if is_image_input(spec):
            nhwc = (pre.layout == "NHWC") if pre else (shape[-1] in (1, 3) and shape[1] not in (1, 3))
            h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
            p = pre or Preprocessing(**{**DEFAULT_PREPROCESSING.__dict__, "layout": "NHWC" if nhwc else "NCHW"})
            x, _ = prepare(synthetic_image(h, w, seed), TensorSpec(spec.name, spec.dtype, shape), p, color="rgb")
            feeds[spec.name] = x[:, :shape[1]] if not nhwc else x[..., :shape[-1]]
            what.append(f"{spec.name}: synthetic image through {'the manifest' if pre else 'default'} preprocessing")
        elif spec.dtype.startswith("float"):
            feeds[spec.name] = rng.uniform(-1, 1, shape).astype(spec.dtype)
            what.append(f"{spec.name}: uniform [-1, 1]")
        elif spec.dtype == "bool":
            feeds[spec.name] = rng.random(shape) < 0.5
            what.append(f"{spec.name}: random booleans")
        else:
            feeds[spec.name] = rng.integers(0, 8, shape).astype(spec.dtype)
            what.append(f"{spec.name}: integers in [0, 8)")
    return feeds, "; ".join(what)


def load_samples(paths: list[Path], specs: list[TensorSpec], pre: Preprocessing | None) -> list[dict]:
    """Samples from image files (single-input image models) or .npy/.npz files (keyed by input name)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | {".npy", ".npz"})
        elif p.is_file():
            files.append(p)
        else:
            raise EdgekitError(f"{p}: no such file or folder")
    if not files:
        raise EdgekitError(f"no images or .npy/.npz files in {', '.join(map(str, paths))}")
    samples = []
    for f in files:
        if f.suffix.lower() == ".npz":
            samples.append(_load_npz(f))
        elif f.suffix.lower() == ".npy":
            if len(specs) != 1:
                raise EdgekitError(f"{f}: a .npy file feeds one input, the model has {len(specs)}; use .npz")
            samples.append({specs[0].name: load_npy(f)})
        else:
            if len(specs) != 1 or not is_image_input(specs[0]):
                raise EdgekitError(f"{f}: images feed a model with one image input")
            samples.append({specs[0].name: prepare(read_image(f), specs[0], pre)[0]})
    return samples


def make_samples(specs: list[TensorSpec], data: list | None, pre: Preprocessing | None,
                 samples: int) -> tuple[list[dict], str]:
    """Up to `samples` inputs from `data` (files/folders), else `samples` generated ones; and what they are."""
    check_input_memory(specs, 1 if data else samples)  # files: each sample at the claimed shape, checked below
    if data:
        feeds = load_samples(data, specs, pre)[:samples]
        return feeds, f"{len(feeds)} sample(s) from {', '.join(map(str, data))}" + (
            f" ({pre.color.upper()}, mean {pre.mean}, std {pre.std}, resize {pre.resize})" if pre else "")
    feeds, what = [], ""
    for seed in range(samples):
        f, what = generated_inputs(specs, pre, seed)
        feeds.append(f)
    return feeds, f"{samples} generated sample(s): {what}"


def timing_inputs(runner, data, preprocessing: Preprocessing | None) -> tuple[list[dict], str]:
    """The inputs `bench` times a runner on: all the given files (through the preprocessing), else one
    generated sample; and what they are."""
    for spec in runner.inputs:
        if any(not isinstance(d, int) for d in spec.shape[1:]):
            example = spec.name + ":" + "x".join(str(d) if isinstance(d, int) else "N" for d in spec.shape)
            raise EdgekitError(f"input '{spec.name}' has dynamic shape {format_shape(spec.shape)}; give a static "
                               f"one with {spell('input_shapes', example)}")
    return make_samples(runner.inputs, data, preprocessing or runner.manifest.preprocessing,
                        sys.maxsize if data else 1)
