"""TFLite, converted by onnx2tf in a child process (TensorFlow stays out of ours), run by LiteRT.

onnx2tf turns NCHW into NHWC and NCW into NWC (every 3-D input, and outputs whose last op works channels-last)
and names outputs Identity, Identity_1, ...; the runner transposes and renames back. onnx2tf downloads a
calibration .npy when inputs look like images: we write that file into its working folder first (from the
user's data when given), and give it a copy of the model, which it rewrites in place.

int8: onnx2tf also writes its SavedModel (`-osd`), which TensorFlow's converter quantizes within the accuracy
budget (edgekit.quantize.tflite_int8)."""
from __future__ import annotations

import re
import shutil
import sys

import numpy as np

from ..errors import BackendMissing, ConversionError, EdgekitError
from ..manifest import Manifest, Precision, TensorSpec
from ..subproc import run_tool, tail
from .base import Backend, Converted, Recipe, Runner, dist_version, restore_output

CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# The TFLite interpreters a runner can use, best first: LiteRT, then tflite-runtime (the same Interpreter API; the
# wheel older device images ship, on PyPI up to cp311). EDGEKIT_TFLITE_RUNTIME=<distribution> picks one.
INTERPRETERS = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"))
RUNTIME_ENV = "EDGEKIT_TFLITE_RUNTIME"


def interpreter_choice(candidates=INTERPRETERS) -> tuple[str, str] | None:
    """(module, distribution) of the first installed interpreter in `candidates` (or the one RUNTIME_ENV names,
    when it is installed); None when there is none. Checked with find_spec: nothing is imported."""
    import importlib.util
    import os

    wanted = os.environ.get(RUNTIME_ENV, "").strip()
    if wanted:
        candidates = [c for c in candidates if wanted in c]
    for module, dist in candidates:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if found:
            return module, dist
    return None


def interpreter_class(candidates=INTERPRETERS):
    """The Interpreter class of the chosen runtime, and its distribution name."""
    import importlib

    choice = interpreter_choice(candidates)
    if choice is None:
        raise BackendMissing("tflite", "LiteRT (ai-edge-litert) or tflite-runtime", BACKEND.install_hint())
    return importlib.import_module(choice[0]).Interpreter, choice[1]


class TfliteRunner(Runner):
    strided_feeds = True  # _to_tf lays every input out for LiteRT (set_tensor copies it into the interpreter)

    def __init__(self, manifest, folder, threads):
        super().__init__(manifest, folder, threads)
        Interpreter, self.interpreter_dist = interpreter_class()

        path = manifest.file(folder, "model")
        try:
            self.interpreter = Interpreter(str(path), num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConversionError("tflite", f"{self.interpreter_dist} cannot load {path.name}: {first[:300]}") from None
        ins = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        outs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self._in = [(s, ins[s.backend_name]) for s in self.inputs]
        self._out = [(s, outs[s.backend_name]) for s in self.outputs]

    def _run(self, feeds):
        it = self.interpreter
        for spec, index in self._in:
            it.set_tensor(index, _to_tf(feeds[spec.name], spec.layout))
        it.invoke()
        return {spec.name: restore_output(_from_nwc(it.get_tensor(index)) if spec.layout == "NWC"
                                          else it.get_tensor(index), spec, "tflite") for spec, index in self._out}

    def settings(self) -> dict:
        return {**super().settings(), "interpreter": self.interpreter_dist}

    def close(self):
        self.interpreter = None


def _to_tf(arr: np.ndarray, layout: str | None) -> np.ndarray:
    """An ONNX-layout input as the .tflite takes it, C-contiguous (the runner's `_run` does the same per call).
    An NCHW view of an NHWC buffer (preprocess.prepare(contiguous=False)) goes in as that buffer, uncopied."""
    if layout == "NHWC":
        if arr.ndim == 4 and arr.transpose(0, 2, 3, 1).flags.c_contiguous:
            return arr.transpose(0, 2, 3, 1)
        return nchw_to_nhwc(np.ascontiguousarray(arr))
    return np.ascontiguousarray(arr.transpose(0, 2, 1)) if layout == "NWC" else np.ascontiguousarray(arr)


def _from_nwc(arr: np.ndarray) -> np.ndarray:
    return arr.transpose(0, 2, 1) if arr.ndim == 3 else arr


def nchw_to_nhwc(arr: np.ndarray) -> np.ndarray:
    """NCHW -> contiguous NHWC. OpenCV's channel merge interleaves planes ~20x faster than numpy's strided
    transpose copy (3 us vs 75 us for 1x3x48x192 here: 15% of PP-OCR cls's latency; benchmarks/runner_overhead.py)."""
    if arr.shape[1] <= 4 and arr.dtype in (np.float32, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.float64):
        import cv2

        return np.stack([cv2.merge([np.ascontiguousarray(p) for p in img]).reshape(arr.shape[2], arr.shape[3], -1)
                         for img in arr]) if arr.shape[0] != 1 else \
            cv2.merge(list(arr[0])).reshape(1, arr.shape[2], arr.shape[3], arr.shape[1])
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


class TfliteBackend(Backend):
    name = "tflite"
    runtime = "onnx2tf + LiteRT"
    extra = "tflite"
    requires = ("ai_edge_litert",)  # or tflite_runtime: see available()
    converter_requires = ("onnx2tf", "tensorflow", "ai_edge_litert")
    # onnx2tf rejects onnxslim's `@` node names; reshape-static folds shape-computed Reshapes it mistranslates
    passes = ("simplify", "sanitize-names", "reshape-static")
    extra_rungs = (Recipe("rewrites", (*passes, "rnn-unroll", "dequantize-dynamic", "erf-gelu"), (),
                          "op-family rewrites: LSTM/GRU unrolled (onnx2tf fails on bidirectional LSTM), dynamic "
                          "quantization as float, Erf-GELU in the form TensorFlow fuses into builtin GELU"),
                   Recipe("pseudo-erf", passes, (("onnx2tf", "-rtpo Erf"),),
                          "onnx2tf lowers Erf (GELU in transformers, PP-OCRv6) to FlexErf, which LiteRT cannot run; "
                          "-rtpo Erf makes it emit builtin ops instead", for_ops=("Erf",)),)
    precisions = ("fp32", "fp16", "int8")
    dynamic = False
    dynamic_why = "onnx2tf needs static input shapes to lay out NHWC and fold shape computations"

    @property
    def runtime_modules(self):
        choice = interpreter_choice()
        return (choice[0],) if choice else INTERPRETERS[0][:1]

    def available(self, convert: bool = False) -> bool:
        """Running needs one interpreter (LiteRT or tflite-runtime); converting needs onnx2tf, TensorFlow and
        LiteRT (the converter checks its output with LiteRT)."""
        if convert:
            return super().available(convert=True)
        return interpreter_choice() is not None

    def install_hint(self) -> str:
        return "pip install 'edgekit[tflite]' (a device needs only ai-edge-litert, or tflite-runtime)"

    def versions(self):
        found = {k: dist_version(k) for k in ("onnx2tf", "tensorflow", "ai-edge-litert")}
        if dist_version("tflite-runtime"):
            found["tflite-runtime"] = dist_version("tflite-runtime")
        return found

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        work = options.workdir
        shutil.copyfile(onnx_path, work / "model.onnx")
        np.save(work / CALIBRATION_FILE, calibration_images(options.calibration))
        extra = options.converter.get("onnx2tf", "").split()  # a recipe's onnx2tf flags
        if options.precision == "int8":
            extra.append("-osd")  # the SavedModel TensorFlow's int8 converter starts from
        proc = run_tool([sys.executable, "-m", "onnx2tf", "-i", "model.onnx", "-o", "saved", "-n", *extra], cwd=work)
        which = "float16" if options.precision == "fp16" else "float32"
        produced = work / "saved" / f"model_{which}.tflite"
        if proc.returncode != 0 or not produced.is_file():
            node = re.search(r"onnx_op_name:\s*(\S+)", proc.stdout)
            op = re.search(r"onnx_op_type:\s*(\S+)", proc.stdout)
            where = f" at {op[1] + ' ' if op else ''}node {node[1]}" if node else ""
            raise ConversionError("tflite", f"onnx2tf failed{where} (exit {proc.returncode})",
                                  tail(_strip_ansi(proc.stdout)))
        shutil.copyfile(produced, outdir / "model.tflite")
        flex = select_tf_ops(outdir / "model.tflite")
        if flex:
            raise ConversionError("tflite", f"onnx2tf emitted TensorFlow Select ops that LiteRT cannot run: "
                                  f"{', '.join(flex)} (from ONNX {', '.join(sorted({f[4:] for f in flex}))})")
        ins, outs = map_io(outdir / "model.tflite", inputs, outputs)
        settings = {"delegate": "XNNPACK (LiteRT default)"}
        # fp16: LiteRT dequantizes onnx2tf's fp16 weights at load and computes in fp32 (XNNPACK's fp16 inference
        # needs the model's reduced-precision metadata, which onnx2tf does not write)
        weights, compute, quantized = ("fp16" if which == "float16" else "fp32"), "fp32", None
        if options.precision == "int8":
            weights, compute, quantized = _int8(onnx_path, work / "saved", outdir / "model.tflite", ins, outs,
                                                settings, options)
            ins, outs = map_io(outdir / "model.tflite", inputs, outputs)
        return Converted(files={"model": "model.tflite"}, inputs=ins, outputs=outs,
                         precision=Precision(options.precision, weights, compute, settings, quantized),
                         tools=self.versions())

    def load(self, folder, manifest, threads=None, device="cpu"):
        self.require()
        return TfliteRunner(manifest, folder, threads)


def _int8(onnx_path, saved, dst, ins, outs, settings, options) -> tuple[str, str, dict]:
    """Replace the fp32 .tflite at `dst` by TensorFlow's int8 one within the budget; the precision fields."""
    from ..quantize import tflite_int8
    from ..quantize.repair import summary

    if not options.calibration_samples:
        raise EdgekitError("int8 needs calibration data")
    fp32 = options.workdir / "model_fp32.tflite"
    shutil.copyfile(dst, fp32)

    def run(path, samples):  # TensorFlow's converter names the tensors its own way: matched by signature again
        runner = TfliteRunner(Manifest("tflite", {"model": path.name}, {}, *map_io(path, ins, outs),
                                       Precision("int8", settings=settings)), path.parent, 1)
        try:
            return [runner(s) for s in samples]
        finally:
            runner.close()

    samples = options.calibration_samples
    tf_samples = [{s.name: _to_tf(x[s.name], s.layout) for s in ins} for x in samples]
    r, int8 = tflite_int8.quantize_within(onnx_path, saved, dst, samples, tf_samples, ins, outs, options.max_drop,
                                          options.workdir, run, options.accept)
    if not int8:
        raise ConversionError("tflite", "int8: TensorFlow's converter quantized no layer of this model")
    quantized = summary("TensorFlow full-integer post-training quantization (MinMax calibration, per-channel "
                        "int8 weights, int8 activations, float I/O)", len(options.calibration_samples), int8, r,
                        fp32.stat().st_size, dst.stat().st_size)
    return f"int8 x{int8} layers, fp32 x{len(r.keep)} kept float", "int8 + fp32", quantized


def calibration_images(calibration: dict | None) -> np.ndarray:
    """20 NHWC float images in [0, 1] at 128x128, the format onnx2tf wants; from the user's data if given."""
    import cv2

    if calibration:
        arr = next(iter(calibration.values()))
        if arr.ndim == 4 and arr.shape[1] == 3:
            imgs = arr.transpose(0, 2, 3, 1).astype(np.float32)
            lo, hi = imgs.min(), imgs.max()
            imgs = (imgs - lo) / max(hi - lo, 1e-6)
            imgs = np.stack([cv2.resize(i, (128, 128)) for i in imgs])
            return np.resize(imgs, (20, 128, 128, 3)).astype(np.float32)
    from ..preprocess import synthetic_image

    return np.stack([synthetic_image(128, 128, seed=i) for i in range(20)]).astype(np.float32) / 255.0


def select_tf_ops(tflite_path) -> list[str]:
    """The Flex (select TensorFlow) ops a .tflite needs: LiteRT's interpreter has no Flex delegate, so
    `allocate_tensors` would fail on them ("Select TensorFlow op(s) ... not supported")."""
    from ai_edge_litert.interpreter import Interpreter

    ops = Interpreter(str(tflite_path))._get_ops_details()
    return sorted({o["op_name"] for o in ops if str(o.get("op_name", "")).startswith("Flex")})


def map_io(tflite_path, inputs: list[TensorSpec], outputs: list[TensorSpec]):
    """Match the .tflite's tensors to the ONNX ones: by the signature (onnx2tf keeps the ONNX names there), else
    by tensor name, else in order."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(tflite_path))
    tin = it.get_input_details()
    tout = sorted(it.get_output_details(), key=lambda d: _identity_index(d["name"]))
    by_name = {d["name"]: d for d in tin}
    if len(tin) != len(inputs) or len(tout) != len(outputs):
        raise ConversionError("tflite", f"onnx2tf produced {len(tin)} inputs / {len(tout)} outputs, the ONNX model "
                                        f"has {len(inputs)} / {len(outputs)}")
    # tensor names (serving_default_x:0, Identity_N, PartitionedCall:N) need not follow the ONNX order (iris
    # landmark: PartitionedCall:1 is the first output; a VAD's state can come before its audio)
    try:
        full = next(iter(it._get_full_signature_list().values()), {})
    except Exception:
        full = {}
    sig_in, signature = full.get("inputs", {}), full.get("outputs", {})
    in_by_index = {d["index"]: d for d in tin}
    ins = []
    for i, spec in enumerate(inputs):
        safe = re.sub(r"[^A-Za-z0-9_]", "_", spec.name)
        d = (in_by_index.get(sig_in.get(spec.name, sig_in.get(safe))) or by_name.get(spec.name)
             or by_name.get(safe) or tin[i])
        ins.append(TensorSpec(spec.name, spec.dtype, spec.shape, d["name"],
                              _layout(spec.shape, list(d["shape"]), is_input=True)))
    by_index = {d["index"]: d for d in tout}
    outs = []
    for i, (s, d) in enumerate(zip(outputs, tout)):
        key = s.name if s.name in signature else re.sub(r"[^A-Za-z0-9_]", "_", s.name)
        # a model TensorFlow's converter wrote from onnx2tf's SavedModel: output_0, output_1, ... in ONNX order
        key = key if key in signature else f"output_{i}"
        d = by_index.get(signature.get(key), d)
        outs.append(TensorSpec(s.name, s.dtype, s.shape, d["name"], _layout(s.shape, list(d["shape"]))))
    return ins, outs


def _layout(onnx_shape: list, tfl_shape: list, is_input: bool = False) -> str | None:
    """NHWC / NWC when the .tflite tensor is the ONNX one channels-last. A 3-D input is NWC whenever the shapes
    allow it (onnx2tf transposes every 3-D input, so [1, C, W] with C == W is NWC too); an output whose shape
    reads both ways is taken as it is (verification catches the other case)."""
    if len(onnx_shape) == 4 and tfl_shape != onnx_shape and tfl_shape == [onnx_shape[i] for i in (0, 2, 3, 1)]:
        return "NHWC"
    if len(onnx_shape) == 3 and tfl_shape == [onnx_shape[i] for i in (0, 2, 1)] and \
            (is_input or tfl_shape != onnx_shape):
        return "NWC"
    return None


def _identity_index(name: str) -> int:
    m = re.search(r"Identity(?:_(\d+))?(?::\d+)?$", name)
    return (int(m[1]) if m and m[1] else 0) if m else 1 << 30


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


BACKEND = TfliteBackend()
