"""`edgekit inspect MODEL.onnx|ARTIFACT`: what a model takes and gives, and what an artifact really is."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("inspect", help="inputs/outputs, opset and ops of a model; manifest summary of an artifact")
    p.add_argument("path", help="an .onnx file or an artifact folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=main)


def main(args) -> int:
    import dataclasses
    import json

    from ..errors import EdgekitError
    from ..manifest import MANIFEST_NAME, Manifest
    from ..onnx import inspect
    from ..onnx.load import load_model

    path = Path(args.path)
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise EdgekitError(f"{path}: not an edgekit artifact (no {MANIFEST_NAME})")
        m = Manifest.load(path)
        if args.json:
            print(m.to_json())
        else:
            print_manifest(path, m)
        return 0
    model = load_model(path)
    info = inspect.summary(model)
    if args.json:
        info = {**info, "inputs": [dataclasses.asdict(s) for s in info["inputs"]],
                "outputs": [dataclasses.asdict(s) for s in info["outputs"]]}
        print(json.dumps(info, indent=2))
        return 0
    from .common import console

    con = console()
    con.print(f"[bold]{path.name}[/]  producer: {info['producer'] or '-'}  opset {info['opset']}  "
              f"IR {info['ir_version']}  {info['nodes']} nodes  {info['parameters']:,} parameters")
    con.print(tensor_table("inputs", info["inputs"]))
    con.print(tensor_table("outputs", info["outputs"]))
    con.print("ops: " + ", ".join(f"{op} x{n}" for op, n in info["ops"].items()))
    return 0


def tensor_table(title, specs, backend=False):
    from rich.markup import escape
    from rich.table import Table

    from ..manifest import format_shape

    t = Table(title=title, title_justify="left")
    for col in ["name", "dtype", "shape"] + (["backend name", "layout", "batch"] if backend else []):
        t.add_column(col)
    for s in specs:
        row = [escape(s.name), s.dtype, format_shape(s.shape)]
        if backend:
            row += [escape(s.backend_name or "-"), s.layout or "same", s.batch]
        t.add_row(*row)
    return t


def print_manifest(path: Path, m) -> None:
    from .common import console, fmt_float

    con = console()
    p = m.precision
    con.print(f"[bold]{path}[/]: {m.format} artifact of {m.source.get('file')} (opset {m.source.get('opset')}, "
              f"sha256 {m.source.get('sha256', '')[:12]})")
    con.print("files: " + ", ".join(f"{k}={v}" for k, v in m.files.items()))
    con.print(f"precision: asked {p.requested}; weights {p.weights}, compute {p.compute}; settings {p.settings}")
    if p.quantization:
        q = p.quantization
        kept = q.get("layers_kept_float") or []
        con.print(f"int8: {q.get('method')} calibration on {q.get('calibration_samples')} sample(s); "
                  f"{q.get('layers_int8')} layers int8, {len(kept)} kept float"
                  + (f" ({', '.join(kept[:6])}{', ...' if len(kept) > 6 else ''})" if kept else "")
                  + f"; drop on the calibration set {q.get('calibration_drop')}; size {q.get('size_ratio')}x fp32",
                  markup=False)
        why = q.get("kept_float_why") or {}
        for name, reason in list(why.items())[:6]:
            con.print(f"  kept float: {name}: {reason}", markup=False)
        if len(why) > 6:
            con.print(f"  kept float: ... {len(why) - 6} more (edgekit.json, precision.quantization)", markup=False)
    if p.lint is not None:
        from ..quantize.lint import message

        con.print(f"lint ({p.requested}): " + (f"{len(p.lint)} finding(s)" if p.lint else "no findings"),
                  markup=False)
        for f in p.lint:
            con.print("  " + message(f), markup=False)
    if m.recipe:
        tried = ", ".join(f"{a['recipe']} {a['status']}" for a in m.attempts)
        con.print(f"recipe: {m.recipe}" + (f" (tried: {tried})" if tried else ""), markup=False)
    con.print("tools: " + ", ".join(f"{k} {v}" for k, v in m.tools.items()))
    if m.passes:
        con.print("passes: " + ", ".join(m.passes))
    con.print(tensor_table("inputs", m.inputs, backend=True))
    con.print(tensor_table("outputs", m.outputs, backend=True))
    if m.preprocessing:
        pp = m.preprocessing
        con.print(f"preprocessing: {pp.color.upper()}, x*{pp.scale:.6g} - mean {pp.mean} / std {pp.std}, "
                  f"resize {pp.resize}, layout {pp.layout}")
    v = m.verification
    if v:
        verdict = "[green]PASS[/]" if v.passed else "[red]FAIL[/]"
        con.print(f"verification: {verdict} at {v.precision} on {v.samples} sample(s) ({v.inputs})")
        for o in v.outputs:
            task = (f"  gate: {o.metric} {fmt_float(o.metric_value)} (drop {o.drop:.2%})"
                    if o.metric else "")
            con.print(f"  {o.name}: cosine {fmt_float(o.cosine)}  max abs {fmt_float(o.max_abs)}  "
                      f"mean abs {fmt_float(o.mean_abs)}{task}  {'ok' if o.passed else 'FAIL'}", markup=False)
