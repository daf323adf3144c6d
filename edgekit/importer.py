"""`edgekit import MODEL.tflite`: bring a TFLite model to ONNX (tf2onnx in a child process) and prove the ONNX
model computes what the .tflite computes, by running both on the same inputs (LiteRT vs ONNX Runtime).

tf2onnx keeps the TFLite model's NHWC inputs and its tensor names, so inputs and outputs are matched by name
(by order where tf2onnx renamed them) and a transposed layout is undone before comparing. TFLite files with
sparse weights (TFLite `sparsity` tensors feeding DENSIFY ops, e.g. MediaPipe's sparse full-range BlazeFace)
make tf2onnx 1.17 fail ("cannot reshape array of size 77 into shape (8,1,1,32)": it reads the compressed
buffer as if it were dense); such files are densified first: LiteRT runs the DENSIFY ops once, the dense
weights replace them, and the copy, not the user's file, goes to tf2onnx."""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConversionError, EdgekitError
from .manifest import OutputCheck, Preprocessing, TensorSpec
from .subproc import run_tool, tail

DEFAULT_OPSET = 13

# Run in a child process (TensorFlow's flatbuffer tools stay out of ours): copy the .tflite, replacing every
# DENSIFY op by the dense constant it computes. Prints "densified N".
DENSIFY = r"""
import sys
import numpy as np
from tensorflow.lite.python import schema_py_generated as s
from tensorflow.lite.tools import flatbuffer_utils as fu
src, dst = sys.argv[1], sys.argv[2]
m = fu.read_model(src)
def code(op):
    c = m.operatorCodes[op.opcodeIndex]
    return max(c.builtinCode, c.deprecatedBuiltinCode)
targets = [(g, op) for g, sg in enumerate(m.subgraphs) for op in sg.operators if code(op) == s.BuiltinOperator.DENSIFY]
if not targets:
    print("densified 0"); sys.exit(0)
if any(g != 0 for g, _ in targets):
    sys.exit("DENSIFY ops outside the main subgraph are not supported")
from ai_edge_litert.interpreter import Interpreter, OpResolverType
it = Interpreter(src, experimental_preserve_all_tensors=True,
                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
sg = m.subgraphs[0]
for _, op in targets:
    dense = np.ascontiguousarray(it.get_tensor(op.outputs[0]))
    buf = s.BufferT()
    buf.data = np.frombuffer(dense.tobytes(), np.uint8)
    m.buffers.append(buf)
    sg.tensors[op.outputs[0]].buffer = len(m.buffers) - 1
    sparse = sg.tensors[op.inputs[0]]
    sparse.sparsity, sparse.buffer = None, 0
sg.operators = [op for op in sg.operators if code(op) != s.BuiltinOperator.DENSIFY]
fu.write_model(m, dst)
print(f"densified {len(targets)}")
"""


@dataclass
class ImportResult:
    source: Path
    path: Path | None = None  # the ONNX file written (only when verified)
    ok: bool = False
    error: str | None = None
    log_tail: str = ""
    outputs: list[OutputCheck] = field(default_factory=list)  # ONNX Runtime vs LiteRT, worst over samples
    inputs: str = ""  # what the verification inputs were
    samples: int = 0
    densified: int = 0  # DENSIFY ops folded before tf2onnx
    opset: int = DEFAULT_OPSET
    seconds: float = 0.0
    tools: dict = field(default_factory=dict)

    @property
    def worst_cosine(self) -> float | None:
        return min((o.cosine for o in self.outputs), default=None)

    @property
    def max_abs(self) -> float | None:
        return max((o.max_abs for o in self.outputs), default=None)


def import_tflite(model: str | Path, out: str | Path | None = None, opset: int = DEFAULT_OPSET,
                  data: list | None = None, preprocessing: Preprocessing | None = None, samples: int = 2,
                  tolerances: dict | None = None, force: bool = False) -> ImportResult:
    """Convert a .tflite to ONNX and verify it against LiteRT; write `out` (default: ./<stem>.onnx) only
    when the outputs agree. Bad input raises EdgekitError; a failed conversion or verification comes back
    as a result with `ok` False, `error` saying why, and nothing written."""
    from .fsutil import check_destination
    from .harness import compare

    src = Path(model)
    if not src.is_file():
        raise EdgekitError(f"{src}: no such file")
    if not _is_tflite(src):
        raise EdgekitError(f"{src}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    dest = Path(out) if out is not None else Path.cwd() / f"{src.stem}.onnx"
    if dest.suffix != ".onnx":
        raise EdgekitError(f"{dest}: the output should be an .onnx file")
    check_destination(dest, force)
    tol = dict(tolerances or compare.DEFAULT_TOLERANCES["fp32"])
    result = ImportResult(src.resolve(), opset=opset, tools=_versions())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-import-") as work:
        work = Path(work)
        try:
            onnx_model, result.densified = _convert(src, work, opset)
            feeds, result.inputs = _inputs(src, data, preprocessing, samples)
            result.samples = len(feeds)
            refs = [_run_tflite(src, f) for f in feeds]
            outs = [_run_onnx(onnx_model, f, r) for f, r in zip(feeds, refs)]
            result.outputs = compare.compare_outputs(refs, outs, tol)
            bad = [o for o in result.outputs if not o.passed]
            if bad:
                raise ConversionError("import", "the ONNX model disagrees with LiteRT on the .tflite: " + "; ".join(
                    f"output '{o.name}': cosine {o.cosine:.6f}, max abs error {o.max_abs:.3g}" for o in bad)
                    + f" (needs cosine >= {tol['cos']}, max abs <= {tol['atol']} + {tol['rtol']} x max|ref|)")
            _stamp(onnx_model, src, result)
            _write(onnx_model, dest)
            result.ok, result.path = True, dest
        except ConversionError as e:
            result.error, result.log_tail = str(e), e.log_tail
    result.seconds = time.perf_counter() - start
    return result


def _is_tflite(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    return len(head) == 8 and head[4:8] == b"TFL3"


def _versions() -> dict:
    from .backends.base import dist_version

    return {k: dist_version(k) for k in ("tf2onnx", "tensorflow", "ai-edge-litert", "onnxruntime")}


def _convert(src: Path, work: Path, opset: int):
    import onnx

    tfl = work / "model.tflite"
    proc = run_tool([sys.executable, "-c", DENSIFY, str(src.resolve()), str(tfl)], cwd=work)
    m = re.search(r"densified (\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise ConversionError("import", f"reading {src.name} with TensorFlow's flatbuffer tools failed "
                                        f"(exit {proc.returncode})", tail(proc.stdout))
    densified = int(m[1])
    if not densified:
        tfl = src.resolve()
    target = work / "model.onnx"
    proc = run_tool([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tfl), "--output", str(target),
                     "--opset", str(opset)], cwd=work)
    if proc.returncode != 0 or not target.is_file():
        last = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        why = last[-1].strip() if last else f"exit {proc.returncode}"
        unsupported = re.findall(r"Unsupported ops?: (.*)", proc.stdout)
        if unsupported:
            why = f"tf2onnx does not support: {unsupported[-1].strip()}"
        raise ConversionError("import", f"tf2onnx failed on {src.name}: {why}", tail(proc.stdout))
    model = onnx.load(str(target))
    return model, densified


def _tflite_specs(src: Path) -> list[TensorSpec]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(src))
    return [TensorSpec(d["name"], np.dtype(d["dtype"]).name, [int(v) for v in d["shape"]])
            for d in it.get_input_details()]


def _inputs(src: Path, data, preprocessing, samples) -> tuple[list[dict], str]:
    """Inputs keyed by the .tflite's input names, in its (NHWC) layout."""
    from .harness import inputs as inputs_mod
    from .preprocess import DEFAULT_PREPROCESSING

    specs = _tflite_specs(src)
    pre = preprocessing
    if pre is not None or any(inputs_mod.is_image_input(s) for s in specs):
        pre = Preprocessing(**{**(pre or DEFAULT_PREPROCESSING).__dict__, "layout": "NHWC"})
    return inputs_mod.make_samples(specs, data, pre, max(samples, 1))


def _run_tflite(src: Path, feeds: dict) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(src))
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: np.array(it.get_tensor(d["index"])) for d in it.get_output_details()}


def _run_onnx(model, feeds: dict, ref: dict) -> dict:
    """ONNX Runtime on the imported model, fed and answered in the .tflite's names and layouts."""
    from .runner import reference

    runner = reference(model)
    tfl_names = list(feeds)
    ort_feeds = {}
    for i, spec in enumerate(runner.inputs):
        name = spec.name if spec.name in feeds else tfl_names[i]
        ort_feeds[spec.name] = _to_shape(feeds[name], spec.shape)
    values = runner(ort_feeds)
    names = list(values)
    ref_names = list(ref)
    if len(names) != len(ref_names):
        raise ConversionError("import", f"the ONNX model has {len(names)} outputs, the .tflite {len(ref_names)}")
    out = {}
    for i, want in enumerate(ref_names):
        arr = values[want] if want in values else values[names[i]]
        out[want] = _to_shape(arr, list(ref[want].shape))
    return out


def _to_shape(arr: np.ndarray, shape: list) -> np.ndarray:
    """Match a channels-last/channels-first difference (or a plain reshape) between the two models."""
    want = [d if isinstance(d, int) and d > 0 else None for d in shape]

    def fits(s):
        return len(s) == len(want) and all(d is None or d == a for d, a in zip(want, s))

    if fits(arr.shape):
        return arr
    if arr.ndim == 4:
        for perm in ((0, 3, 1, 2), (0, 2, 3, 1)):
            if fits(arr.transpose(perm).shape):
                return np.ascontiguousarray(arr.transpose(perm))
    if None not in want and int(np.prod(want)) == arr.size:
        return arr.reshape(want)
    raise ConversionError("import", f"cannot match a tensor of shape {list(arr.shape)} to {shape}")


def _stamp(model, src: Path, result: ImportResult) -> None:
    """Record where the ONNX model came from and how it verified (ONNX metadata_props)."""
    from .fsutil import sha256
    from .version import __version__

    info = {"source": src.name, "sha256": sha256(src), "densified_ops": result.densified, "opset": result.opset,
            "tools": {"edgekit": __version__, **result.tools},
            "verification": {"against": "LiteRT on the .tflite", "inputs": _file_names(result.inputs),
                             "samples": result.samples,
                             "outputs": [{"name": o.name, "cosine": o.cosine, "max_abs": o.max_abs}
                                         for o in result.outputs]}}
    meta = {p.key: p for p in model.metadata_props}
    if "edgekit.import" in meta:
        meta["edgekit.import"].value = json.dumps(info)
    else:
        model.metadata_props.add(key="edgekit.import", value=json.dumps(info))


def _file_names(text: str) -> str:
    """Absolute paths in `text` cut to their file names: the model's metadata travels (bundles, devices), the
    host's folders must not travel with it."""
    import re

    return re.sub(r"(?<![\w.~/-])/(?:[^\s,;:()\[\]'\"]+/)+", "", text)


def _write(model, dest: Path) -> None:
    import os

    import onnx

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
