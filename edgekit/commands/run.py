"""`edgekit run ARTIFACT --input NAME=file.npy | IMAGE`: one inference, outputs summarised or saved."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("run", help="run an artifact (or .onnx) on .npy inputs or an image",
                       description="Run one inference. Inputs: --input NAME=file.npy (repeatable), or an image "
                       "path for a single-input image model (preprocessed as the manifest says).")
    p.add_argument("artifact", help="an artifact folder or an .onnx file")
    p.add_argument("image", nargs="?", help="an image, preprocessed with the manifest's preprocessing")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", choices=["cpu", "vulkan"], default="cpu", help="vulkan: ncnn on a Vulkan GPU")
    p.add_argument("--save", default=None, metavar="DIR", help="write each output as DIR/<name>.npy")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import EdgekitError
    from ..fsutil import check_writable_dir
    from ..harness.inputs import load_npy
    from ..preprocess import prepare, read_image
    from ..runner import load
    from .common import console

    if args.save:  # before any work: a file there, or a place that cannot be written, is one line
        check_writable_dir(Path(args.save), "--save")
    runner = load(args.artifact, threads=args.threads, device=args.device)
    feeds = {}
    for item in args.input:
        name, sep, file = item.partition("=")
        if not sep:
            if len(runner.inputs) != 1:
                raise EdgekitError(f"--input '{item}': write NAME=FILE.npy (the model has {len(runner.inputs)} inputs)")
            name, file = runner.inputs[0].name, item
        if not Path(file).is_file():
            raise EdgekitError(f"--input {name}: {file}: no such file")
        feeds[name] = load_npy(Path(file), f"--input {name}")
    if args.image:
        if len(runner.inputs) != 1:
            raise EdgekitError("an image feeds a model with exactly one input; use --input NAME=FILE.npy")
        pre = runner.manifest.preprocessing
        if pre is None:
            console(stderr=True).print("note: the manifest has no preprocessing; using x/255 scaled to [-1, 1] RGB "
                                       "(export with --mean/--std/--rgb/--bgr to record the model's own)")
        feeds[runner.inputs[0].name], _ = prepare(read_image(Path(args.image)), runner.inputs[0], pre)
    if not feeds:
        raise EdgekitError("give inputs with --input NAME=FILE.npy or an image path")
    outputs = runner(feeds)
    con = console()
    p = runner.precision
    con.print(f"{runner.format} ({p.weights} weights, {runner.effective_precision} compute)")
    for name, arr in outputs.items():
        con.print(f"{name}: shape {list(arr.shape)} {arr.dtype}  " + summarize(arr, runner.manifest.labels))
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        for name, arr in outputs.items():
            target = out / (safe_filename(name) + ".npy")
            tmp = target.with_suffix(".npy.tmp")
            with open(tmp, "wb") as f:
                np.save(f, arr)
            tmp.replace(target)
        con.print(f"saved {len(outputs)} output(s) to {out}")
    return 0


def summarize(arr: np.ndarray, labels: list[str] | None = None) -> str:
    if arr.size == 0:
        return "(empty)"
    if not np.issubdtype(arr.dtype, np.number):
        return ""
    a = arr.astype(np.float64)
    text = f"min {a.min():.4g} max {a.max():.4g} mean {a.mean():.4g}"
    flat = a.reshape(a.shape[0], -1) if a.ndim >= 2 else a[None]
    if flat.shape[-1] <= 1000 and a.ndim == 2:
        top = np.argsort(-flat[0])[:3]
        names = [labels[i] if labels and i < len(labels) else str(i) for i in top]
        text += "  top: " + ", ".join(f"{n}={flat[0, i]:.4g}" for n, i in zip(names, top))
    return text


def safe_filename(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
