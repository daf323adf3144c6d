"""`edgekit demo`: the main job on a bundled default — a real PP-OCR model exported to every format and
verified on rendered text images, with the results table. Nothing is downloaded."""
from __future__ import annotations


def register(sub) -> None:
    from ..fixtures import OCR_MODELS

    p = sub.add_parser("demo", help="export a packaged real model (PP-OCR) to all formats and verify it")
    p.add_argument("--model", choices=sorted(OCR_MODELS), default="ppocr-rec")
    p.add_argument("--target", default="all")
    p.add_argument("--out", default="edgekit-demo", help="output folder (default ./edgekit-demo)")
    p.add_argument("--force", action="store_true", help="overwrite a previous demo's artifacts")
    p.set_defaults(func=main)


def main(args) -> int:
    import tempfile
    from pathlib import Path

    from ..export import export
    from ..fixtures import OCR_MODELS, write_text_images
    from .common import console, status
    from .export import print_results

    fx = OCR_MODELS[args.model]
    con = console()
    con.print(f"[bold]edgekit demo[/]: {fx.name} ({fx.path.name} from {fx.package}), input {fx.input_shape}, "
              f"target {args.target}")
    with tempfile.TemporaryDirectory() as tmp:
        images = write_text_images(Path(tmp), fx.kind, count=3)
        with status("preparing") as update:
            results = export(fx.path, target=args.target, out=args.out, input_shapes=[fx.input_shape],
                             force=args.force, data=[str(p) for p in images], samples=3,
                             preprocessing=fx.preprocessing, progress=lambda f, s: update(f"[{f}] {s}"))
    print_results(results, fx.path.name)
    return 0 if all(r.ok for r in results) else 1
