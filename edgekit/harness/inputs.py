"""Input data for verification: real images through the manifest's preprocessing, .npy files, or generated
data with sensible ranges. Random N(0,1) noise through an image model gives false alarms (tiny activations,
saturated softmaxes), so generated image inputs are synthetic pictures put through the preprocessing."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..manifest import Preprocessing, TensorSpec
from ..onnx.shapes import format_shape

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# When nothing says how an image model normalises, assume the common [-1, 1] scaling.
DEFAULT_PREPROCESSING = Preprocessing(color="rgb", mean=[0.5] * 3, std=[0.5] * 3)


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth picture (gradient, shapes, strokes; RGB uint8) with the statistics of a photo, not noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([(xx / max(w, 1)) * rng.uniform(60, 200), (yy / max(h, 1)) * rng.uniform(60, 200),
                     np.full_like(xx, rng.uniform(40, 200))], -1)
    img = base.astype(np.uint8).copy()
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, center, int(rng.integers(2, max(3, min(h, w) // 3))), color, -1)
        else:
            cv2.line(img, center, (int(rng.integers(0, w)), int(rng.integers(0, h))), color,
                     int(rng.integers(1, max(2, min(h, w) // 12))))
    return cv2.GaussianBlur(img, (3, 3), 0)


def is_image_input(spec: TensorSpec) -> bool:
    s = spec.shape
    return spec.dtype == "float32" and len(s) == 4 and (s[1] in (1, 3) or s[-1] in (1, 3))


def preprocess(img_rgb: np.ndarray, spec: TensorSpec, pre: Preprocessing | None) -> np.ndarray:
    """An RGB uint8 image -> one input tensor (1, C, H, W) or (1, H, W, C) as the model takes it."""
    import cv2

    pre = pre or DEFAULT_PREPROCESSING
    nhwc = pre.layout == "NHWC"
    h, w = (spec.shape[1], spec.shape[2]) if nhwc else (spec.shape[2], spec.shape[3])
    if not (isinstance(h, int) and isinstance(w, int)):
        raise EdgekitError(f"input '{spec.name}' has dynamic size {format_shape(spec.shape)}; give a static shape")
    img = img_rgb if pre.color == "rgb" else img_rgb[..., ::-1]

    def normalize(pixels):
        return (pixels.astype(np.float32) * pre.scale - np.float32(pre.mean)) / np.float32(pre.std)

    if pre.resize == "stretch":
        x = normalize(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
    elif pre.resize == "keep-ratio-pad-right":
        # PaddleOCR's text-line input: fill the height, keep the ratio (squeeze lines longer than the input),
        # and pad on the right with 0 after normalising.
        nw = min(w, int(np.ceil(h * img.shape[1] / max(img.shape[0], 1))))
        x = np.zeros((h, w, 3), np.float32)
        x[:, :nw] = normalize(cv2.resize(img, (nw, h), interpolation=cv2.INTER_LINEAR))
    else:  # letterbox: keep the ratio, centre, pad with black
        scale = min(w / img.shape[1], h / img.shape[0])
        nw, nh = max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))
        canvas = np.zeros((h, w, 3), np.uint8)
        x0, y0 = (w - nw) // 2, (h - nh) // 2
        canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = normalize(canvas)
    return (x[None] if nhwc else x.transpose(2, 0, 1)[None]).astype(np.float32)


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
            x = preprocess(synthetic_image(h, w, seed), TensorSpec(spec.name, spec.dtype, shape), p)
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
        if f.suffix == ".npz":
            with np.load(f) as z:
                samples.append({k: z[k] for k in z.files})
        elif f.suffix == ".npy":
            if len(specs) != 1:
                raise EdgekitError(f"{f}: a .npy file feeds one input, the model has {len(specs)}; use .npz")
            samples.append({specs[0].name: np.load(f)})
        else:
            if len(specs) != 1 or not is_image_input(specs[0]):
                raise EdgekitError(f"{f}: images feed a model with one image input")
            samples.append({specs[0].name: preprocess(read_image(f), specs[0], pre)})
    return samples


def read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgekitError(f"{path}: cannot read as an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_samples(specs: list[TensorSpec], data: list | None, pre: Preprocessing | None,
                 samples: int) -> tuple[list[dict], str]:
    """Up to `samples` inputs from `data` (files/folders), else `samples` generated ones; and what they are."""
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
    from ..options import spell

    for spec in runner.inputs:
        if any(not isinstance(d, int) for d in spec.shape[1:]):
            example = spec.name + ":" + "x".join(str(d) if isinstance(d, int) else "N" for d in spec.shape)
            raise EdgekitError(f"input '{spec.name}' has dynamic shape {format_shape(spec.shape)}; give a static "
                               f"one with {spell('input_shapes', example)}")
    return make_samples(runner.inputs, data, preprocessing or runner.manifest.preprocessing,
                        sys.maxsize if data else 1)
