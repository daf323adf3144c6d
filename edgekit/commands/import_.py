"""`edgekit import MODEL.tflite [-o MODEL.onnx]`: TFLite -> ONNX (tf2onnx), verified against LiteRT."""
from __future__ import annotations

from .common import add_preprocessing_args, console, fmt_float, preprocessing_from_args


def register(sub) -> None:
    p = sub.add_parser("import", help="bring a TFLite model to ONNX, verified against LiteRT",
                       description="Convert MODEL.tflite to ONNX with tf2onnx (sparse weights are densified "
                       "first), run both on the same inputs (LiteRT vs ONNX Runtime, layouts matched) and write "
                       "the ONNX model only when every output agrees. Exit 0 when it did, 1 when the conversion "
                       "or the check failed, 2 for bad input.")
    p.add_argument("model", help="the .tflite model")
    p.add_argument("--out", "-o", default=None, help="the ONNX file to write (default: ./<model>.onnx)")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset for tf2onnx (default 13)")
    p.add_argument("--data", action="append", default=None, metavar="PATH",
                   help="verification inputs: images (through the preprocessing, NHWC) or .npy/.npz")
    p.add_argument("--samples", type=int, default=2, help="verification samples (default 2)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_preprocessing_args(p)
    p.set_defaults(func=main)


def main(args) -> int:
    from ..importer import import_tflite

    r = import_tflite(args.model, out=args.out, opset=args.opset, data=args.data,
                      preprocessing=preprocessing_from_args(args), samples=args.samples, force=args.force)
    con = console()
    if r.densified:
        con.print(f"densified {r.densified} sparse weight tensor(s) before tf2onnx")
    for o in r.outputs:
        verdict = "[green]ok[/]" if o.passed else "[red]differs[/]"
        con.print(f"  output {o.name}: cosine {fmt_float(o.cosine)}  max abs err {fmt_float(o.max_abs)}  {verdict}")
    if r.inputs:
        con.print(f"verified against LiteRT on: {r.inputs}")
    if r.ok:
        con.print(f"[green]wrote {r.path}[/] ({r.seconds:.1f} s)")
        return 0
    con.print(f"[red]{r.error}[/]")
    if r.log_tail:
        con.print(r.log_tail, markup=False, style="dim")
    return 1
