#!/usr/bin/env python
"""Make the sample videos the pipeline apps and tests use, from packaged real images; nothing is downloaded.

- face.avi: scikit-image's astronaut photo, panned and zoomed (a slow push-in with a sideways drift), 640x480.
- far_face.avi: the astronaut photo walking away: scaled from 480 to 180 px (its face from ~90 to ~33 px wide) and
            drifting across a 640x480 backdrop; far_face.json holds the face box per frame (for BlazeFace full range,
            which finds the small faces short range misses).
- ocr.avi:  a page of printed text lines rendered with Pillow, drifting slowly, 640x480; ocr.json holds the
            ground-truth lines.

    python tools/make_sample_media.py [--out samples] [--frames 48]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

W, H = 640, 480
OCR_LINES = ["Hello edgekit 2026", "The quick brown fox", "INVOICE No. 4711-B", "Total: 128.50 EUR",
             "Raspberry Pi 5 and ncnn", "OCR on every backend"]
UPSIDE_DOWN = {5}  # lines printed upside down (the orientation classifier turns them back)


def face_frames(n: int) -> list[np.ndarray]:
    """The astronaut (BGR) moved and zoomed across n frames of W x H."""
    import cv2
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512, face near (250, 110)
    frames = []
    for i in range(n):
        a = i / max(n - 1, 1)
        zoom = 0.9 + 0.5 * a  # push in
        # keep the face inside the frame: centre of the view drifts from left to right of the face
        cx = 230 + 60 * np.sin(2 * np.pi * a)
        cy = 190 - 40 * a
        m = np.array([[zoom, 0, W / 2 - zoom * cx], [0, zoom, H / 2 - zoom * cy]], np.float32)
        frames.append(cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return frames


# The astronaut's face in skimage.data.astronaut() (512x512), x0, y0, x1, y1 (where BlazeFace boxes it).
ASTRONAUT_FACE = (179.0, 81.0, 272.0, 174.0)


def far_face_frames(n: int) -> tuple[list[np.ndarray], list[list[float]]]:
    """The astronaut (BGR) shrinking from 480 to 180 px over n frames on a smooth backdrop, and the face box
    in each frame (ASTRONAUT_FACE scaled and moved with the photo)."""
    import cv2
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    yy, xx = np.mgrid[0:H, 0:W]
    backdrop = np.dstack([90 + 60 * xx / W, 100 + 40 * yy / H, 120 + 30 * (xx + yy) / (W + H)]).astype(np.uint8)
    frames, boxes = [], []
    for i in range(n):
        a = i / max(n - 1, 1)
        size = int(round(480 - 300 * a))
        x, y = int(round(80 + 200 * a)), int(round(100 * a))  # drifts right and up the frame
        x, y = min(x, W - size), min(y, H - size)
        frame = backdrop.copy()
        frame[y:y + size, x:x + size] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        k = size / img.shape[0]
        x0, y0, x1, y1 = ASTRONAUT_FACE
        frames.append(frame)
        boxes.append([round(x + k * x0, 1), round(y + k * y0, 1), round(x + k * x1, 1), round(y + k * y1, 1)])
    return frames, boxes


def ocr_page() -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("RGB", (W + 80, H + 80), (246, 244, 238))
    draw = ImageDraw.Draw(page)
    y = 60
    for k, text in enumerate(OCR_LINES):
        size = 30 + (k % 3) * 3
        font = ImageFont.load_default(size=size)
        x = 70 + (k % 2) * 30
        if k in UPSIDE_DOWN:
            w = int(font.getlength(text)) + 8
            line = Image.new("RGB", (w, size + 12), (246, 244, 238))
            ImageDraw.Draw(line).text((4, 2), text, fill=(25, 25, 35), font=font)
            page.paste(line.rotate(180), (x, y))
        else:
            draw.text((x, y), text, fill=(25, 25, 35), font=font)
        y += size + 34
    return np.asarray(page)[..., ::-1].copy()  # BGR


def ocr_frames(n: int) -> list[np.ndarray]:
    page = ocr_page()
    frames = []
    for i in range(n):
        a = i / max(n - 1, 1)
        dx, dy = int(round(40 * a)), int(round(20 * np.sin(np.pi * a)))
        frames.append(np.ascontiguousarray(page[dy:dy + H, dx:dx + W]))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    import cv2

    fourcc = {".avi": "MJPG", ".mp4": "mp4v", ".webm": "VP80"}[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    if not w.isOpened():
        raise SystemExit(f"cannot write {path}")
    for f in frames:
        w.write(f)
    w.release()
    return path


def make(out: Path, frames: int = 48, ocr_frames_count: int | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    face = write_video(out / "face.avi", face_frames(frames))
    far, boxes = far_face_frames(frames)
    far_face = write_video(out / "far_face.avi", far)
    (out / "far_face.json").write_text(json.dumps({"boxes": boxes}) + "\n")
    ocr = write_video(out / "ocr.avi", ocr_frames(ocr_frames_count or frames))
    (out / "ocr.json").write_text(json.dumps({"lines": OCR_LINES}, indent=2) + "\n")
    return {"face": face, "far_face": far_face, "far_face_truth": out / "far_face.json", "ocr": ocr,
            "ocr_truth": out / "ocr.json"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="samples", help="output folder (default ./samples)")
    ap.add_argument("--frames", type=int, default=48, help="frames per video (default 48, 30 fps)")
    ap.add_argument("--ocr-frames", type=int, default=None, help="frames of the OCR video (default: --frames)")
    args = ap.parse_args(argv)
    for name, path in make(Path(args.out), args.frames, args.ocr_frames).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
