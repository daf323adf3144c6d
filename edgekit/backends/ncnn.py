"""ncnn (param/bin), converted by pnnx, run by the `ncnn` Python package.

ncnn conventions hidden here: blobs are named in0/out0..., a batch axis is dropped (pnnx records which axis
of each blob was batch, if any, only in the generated `*_ncnn.py`: often none for 1-D/2-D blobs, an inner one
for some states; a batch longer than 1 goes in as ncnn's batched Mat), pnnx writes fp16 weights and ncnn
computes in fp16 storage by default — both are switched off for fp32 (docs/architecture.md, "Precision")."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import BackendMissing, ConversionError, EdgekitError
from ..manifest import Precision, TensorSpec
from ..options import spell
from ..subproc import run_tool, tail
from .base import Backend, Converted, Recipe, Runner, dist_version, restore_output

PNNX_DTYPES = {"float32": "", "float16": "f16", "int64": "i64", "int32": "i32", "int8": "i8", "uint8": "u8"}


def fp_options(precision: str) -> dict:
    fp16 = precision == "fp16"
    return {"use_fp16_packed": fp16, "use_fp16_storage": fp16, "use_fp16_arithmetic": fp16,
            "use_bf16_storage": False, "use_int8_inference": precision == "int8"}


def pnnx_binary() -> Path | None:
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        return None
    exe = Path(list(spec.submodule_search_locations)[0]) / "pnnx"
    return exe if exe.is_file() else None


class NcnnRunner(Runner):
    """`device="vulkan"` runs on the first Vulkan GPU; the manifest's fp16 switches apply there too (ncnn's
    GPU path defaults to fp16 storage and arithmetic, so fp32 artifacts turn them off on the GPU as well)."""

    def __init__(self, manifest, folder, threads, device: str = "cpu"):
        super().__init__(manifest, folder, threads)
        import ncnn

        self.device = device
        self.net = ncnn.Net()
        if device == "vulkan":
            if ncnn.get_gpu_count() == 0:
                raise EdgekitError("ncnn: no Vulkan GPU found (ncnn.get_gpu_count() == 0); use device='cpu'")
            self.net.opt.use_vulkan_compute = True
            self.net.set_vulkan_device(0)
        elif device != "cpu":
            raise EdgekitError(f"ncnn: unknown device '{device}'; use 'cpu' or 'vulkan'")
        for key, value in manifest.precision.settings.items():
            setattr(self.net.opt, key, value)
        if threads:
            self.net.opt.num_threads = threads
        if self.net.load_param(str(manifest.file(folder, "param"))) != 0:
            raise ConversionError("ncnn", f"ncnn cannot load {manifest.files['param']}")
        if self.net.load_model(str(manifest.file(folder, "bin"))) != 0:
            raise ConversionError("ncnn", f"ncnn cannot load {manifest.files['bin']}")
        self._mat = ncnn.Mat

    def _run(self, feeds):
        with self.net.create_extractor() as ex:
            for spec in self.inputs:
                ex.input(spec.backend_name, self._to_mat(feeds[spec.name], batch_axis(spec)))
            out = {}
            for spec in self.outputs:
                ret, mat = ex.extract(spec.backend_name)
                if ret != 0:
                    raise ConversionError("ncnn", f"extracting {spec.backend_name} ({spec.name}) failed ({ret})")
                axis = batch_axis(spec)
                # a batch axis longer than 1 comes back as ncnn's batched Mat; a unit one is restored by shape
                arr = mat.numpy(batch_index=axis) if axis is not None and _dim(spec.shape, axis) > 1 else np.array(mat)
                out[spec.name] = restore_output(arr, spec, "ncnn")
        return out

    def _to_mat(self, arr: np.ndarray, axis: int | None):
        """The ONNX array as the Mat pnnx's graph expects: without its batch axis (a unit one is indexed away,
        the common case; a longer one becomes ncnn's batched Mat, `batch_index` as pnnx's script has it)."""
        if axis is None:
            return self._mat(np.ascontiguousarray(arr)).clone()
        if arr.shape[axis] == 1:
            return self._mat(np.ascontiguousarray(arr[0] if axis == 0 else np.take(arr, 0, axis))).clone()
        return self._mat(np.ascontiguousarray(arr), batch_index=axis).clone()

    def settings(self) -> dict:
        opt = self.net.opt
        return {**super().settings(), "num_threads": opt.num_threads, "openmp_blocktime": opt.openmp_blocktime,
                "openmp_runtime": openmp_runtime()}

    @property
    def effective_precision(self) -> str:
        compute = self.manifest.precision.compute
        return f"{compute} (Vulkan)" if self.device == "vulkan" else compute

    def close(self):
        self.net.clear()


class NcnnBackend(Backend):
    name = "ncnn"
    runtime = "ncnn + pnnx"
    extra = "ncnn"
    requires = ("ncnn",)
    runtime_modules = ("ncnn",)
    devices = ("cpu", "vulkan")
    precisions = ("fp32", "fp16", "int8")  # int8: edgekit.quantize, pure Python, no ncnn C++ tools
    # pnnx leaves tf2onnx's Pad untranslated, mistranslates DCR DepthToSpace, and its fp16 weights flush tiny
    # folded-BatchNorm weights to zero (each pass module says more)
    passes = ("simplify", "pad-mode", "depth-to-space-crd", "fp16-weight-range")
    extra_rungs = (Recipe("rewrites", (*passes, "rnn-unroll", "strided-slice", "dequantize-dynamic",
                                       "unit-axis-reshape"), (),
                          "op-family rewrites: LSTM/GRU unrolled (pnnx maps only torch's exact LSTM surroundings), "
                          "strided Slice/Focus as reshapes (pnnx leaves Tensor.slice), dynamic quantization as "
                          "float (ncnn has no ConvInteger/MatMulInteger), unit-axis Reshapes as Squeeze/Unsqueeze "
                          "(pnnx leaves a Reshape that moves the batch axis, as after an LSTM state, as "
                          "Tensor.reshape)"),)

    def install_hint(self):
        return "pip install 'edgekit[ncnn]' && pip install --no-deps pnnx==20261020"

    def available(self, convert=False):
        return importlib.util.find_spec("ncnn") is not None and (not convert or pnnx_binary() is not None)

    def versions(self):
        return {"ncnn": dist_version("ncnn"), "pnnx": dist_version("pnnx")}

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        exe = pnnx_binary()
        if exe is None:
            raise BackendMissing("ncnn", "the pnnx converter", self.install_hint())
        scalars = [s for s in inputs if not s.shape]
        if scalars:  # pnnx's inputshape has no spelling for a 0-d input ("[]i64" merges into the one before)
            names = ", ".join(f"'{s.name}' ({s.dtype})" for s in scalars)
            raise ConversionError("ncnn", f"pnnx cannot take a 0-d (scalar) input: {names}; if it is constant in "
                                          f"deployment (a sample rate, a step count), freeze it with "
                                          f"{spell('const', f'{scalars[0].name}=VALUE')}")
        work = options.workdir
        model = work / "model.onnx"  # pnnx writes its outputs next to its input
        shutil.copyfile(onnx_path, model)
        def pnnx_shapes(example: dict | None) -> str:
            return ",".join("[" + ",".join(str(d) for d in (example[s.name] if example else s.shape)) + "]"
                            + PNNX_DTYPES.get(s.dtype, "") for s in inputs)

        fp16 = "1" if options.precision == "fp16" else "0"
        # Dynamic axes: pnnx traces at two example shapes (inputshape2) and writes size-independent expressions.
        dynamic = [f"inputshape={pnnx_shapes(options.shapes[0])}", f"inputshape2={pnnx_shapes(options.shapes[1])}"] \
            if options.shapes and len(options.shapes) > 1 else [f"inputshape={pnnx_shapes(None)}"]
        proc = run_tool([str(exe), str(model), *dynamic, f"fp16={fp16}"], cwd=work)
        param, binf = work / "model.ncnn.param", work / "model.ncnn.bin"
        if proc.returncode != 0 or not param.is_file() or not binf.is_file():
            raise ConversionError("ncnn", f"pnnx failed (exit {proc.returncode})", tail(proc.stdout))
        unsupported = unsupported_layers(param)
        if unsupported:
            raise ConversionError("ncnn", f"pnnx left ops that ncnn cannot run: {_where(unsupported, model)}",
                                  tail(proc.stdout))
        axes = _batch_axes(work / "model_ncnn.py")
        for role, src in (("param", param), ("bin", binf)):
            shutil.copyfile(src, outdir / f"model.ncnn.{role}")
        ins = [TensorSpec(s.name, s.dtype, s.shape, f"in{i}", None,
                          _batch_field(axes.get(f"in{i}", 0 if s.shape[:1] == [1] else None)))
               for i, s in enumerate(inputs)]
        outs = [TensorSpec(s.name, s.dtype, s.shape, f"out{i}", None, _batch_field(axes.get(f"out{i}")))
                for i, s in enumerate(outputs)]
        settings = fp_options(options.precision)
        _survives(outdir / "model.ncnn.param", outdir / "model.ncnn.bin", ins, outs, options)
        weights = "fp16" if fp16 == "1" else "fp32"
        compute = "fp16 storage + arithmetic where the CPU has it" if options.precision == "fp16" else "fp32"
        quantized = None
        if options.precision == "int8":
            weights, compute, quantized = _int8(outdir, ins, outs, options)
        return Converted(files={"param": "model.ncnn.param", "bin": "model.ncnn.bin"}, inputs=ins, outputs=outs,
                         precision=Precision(options.precision, weights, compute, settings, quantized),
                         tools=self.versions())

    def load(self, folder, manifest, threads=None, device="cpu"):
        self.require()
        return NcnnRunner(manifest, folder, threads, device)

    def environment(self):
        omp = openmp_runtime()
        return {"ncnn_openmp": omp} if omp else {}


def openmp_runtime() -> str | None:
    """Which OpenMP runtime the ncnn module runs on (it decides whether openmp_blocktime means anything)."""
    try:
        import ncnn  # noqa: F401
        with open("/proc/self/maps") as f:
            maps = f.read()
    except (ImportError, OSError):
        return None
    if "libgomp" in maps:
        return "GNU libgomp (openmp_blocktime has no effect; spin set by GOMP_SPINCOUNT/OMP_WAIT_POLICY)"
    if "libomp" in maps or "libiomp" in maps:
        return "LLVM/Intel libomp (openmp_blocktime applies)"
    return "unknown"


def unsupported_layers(param: Path) -> dict[str, list[str]]:
    """Layer types in a .param file that this ncnn build cannot create (pnnx leaves some ONNX ops as-is)."""
    import ncnn

    bad: dict[str, list[str]] = {}
    for line in param.read_text().splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2 and ncnn.layer_to_index(parts[0]) < 0:
            bad.setdefault(parts[0], []).append(parts[1])
    return bad


# Run in a child: load the model, feed random inputs, extract every output. pnnx can write a graph the ncnn runtime
# crashes on (seen: PP-OCRv4 rec at 48x480 with an Unsqueeze at axis 0, which pnnx writes as an ExpandDims that
# makes Extractor.extract segfault; unit-axis-reshape now inserts after the leading 1), and a crash in-process
# would take the user's export, pipeline or test run down with it.
_PROBE = """
import json, sys
import numpy as np, ncnn
a = json.loads(sys.argv[1])
net = ncnn.Net()
for k, v in a["opt"].items():
    setattr(net.opt, k, v)
net.opt.num_threads = 1
assert net.load_param(a["param"]) == 0 and net.load_model(a["bin"]) == 0
rng = np.random.default_rng(0)
with net.create_extractor() as ex:
    feeds = {name: rng.uniform(-1, 1, shape).astype(np.float32) for name, shape in a["inputs"].items()}
    for name, x in feeds.items():  # x stays referenced: ncnn.Mat(x) borrows its memory until clone()
        ex.input(name, ncnn.Mat(x).clone())
    for name in a["outputs"]:
        ex.extract(name)
"""


def _survives(param: Path, binf: Path, ins: list[TensorSpec], outs: list[TensorSpec], options) -> None:
    """Refuse (this rung) a converted model that crashes the ncnn runtime, found in a child process."""
    import json
    import signal
    import sys

    shapes = options.shapes[0] if options.shapes else {}
    inputs = {}
    for s in ins:
        shape = [int(d) if isinstance(d, int) else 1 for d in shapes.get(s.name, s.shape)]
        axis = batch_axis(s)
        inputs[s.backend_name] = shape[:axis] + shape[axis + 1:] if axis is not None and len(shape) > axis else shape
    arg = {"param": str(param), "bin": str(binf), "opt": fp_options("fp32"), "inputs": inputs,
           "outputs": [s.backend_name for s in outs]}
    proc = run_tool([sys.executable, "-c", _PROBE, json.dumps(arg)], cwd=param.parent, timeout=600)
    rc = proc.returncode
    sig = -rc if rc < 0 else rc - 128 if rc > 128 else 0
    if sig:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        raise ConversionError("ncnn", f"the ncnn runtime crashes ({name}) running the model pnnx wrote, at input "
                                      f"{inputs}: a graph this ncnn cannot run (a pnnx or ncnn bug; the child process "
                                      "that found it died, not this one)", tail(proc.stdout))


def _int8(outdir: Path, ins: list[TensorSpec], outs: list[TensorSpec], options) -> tuple[str, str, dict]:
    """Rewrite the fp32 artifact in `outdir` as int8 (edgekit.quantize), within the accuracy budget."""
    from ..quantize.fallback import quantize_within

    if not options.calibration_samples:
        raise EdgekitError("int8 needs calibration data")
    if any(s.batch != "dropped" for s in ins):
        raise ConversionError("ncnn", "int8: the quantizer handles inputs whose batch axis ncnn drops; this "
                                      "model keeps one")
    fp32_param, fp32_bin = outdir / "fp32.param", outdir / "fp32.bin"
    (outdir / "model.ncnn.param").rename(fp32_param)
    (outdir / "model.ncnn.bin").rename(fp32_bin)
    try:
        fb = quantize_within(fp32_param, fp32_bin, outdir / "model.ncnn.param", outdir / "model.ncnn.bin",
                             options.calibration_samples, {s.name: s.backend_name for s in ins},
                             [s.backend_name for s in outs], options.max_drop, accept=_onnx_gate(outs, options.accept))
    finally:
        fp32_param.unlink(missing_ok=True)
        fp32_bin.unlink(missing_ok=True)
    r = fb.report
    quantized = {"method": r.method, "calibration_samples": r.samples, "layers_int8": len(r.quantized),
                 "layers_kept_float": r.kept_float, "kept_float_why": {n: fb.why.get(n, "") for n in r.kept_float},
                 "gemm_as_innerproduct": r.gemm_rewritten,
                 "innerproduct_as_convolution": r.ip_as_conv, "requantized": r.requantized,
                 "calibration_drop": round(fb.drop, 6), "rounds": fb.rounds, "size_ratio": round(r.size_ratio, 4)}
    return (f"int8 x{len(r.quantized)} layers, fp16 x{len(r.kept_float)} kept float", "int8 + fp32", quantized)


def _onnx_gate(outs: list[TensorSpec], accept):
    """The export's gate (ONNX names and shapes) on ncnn blobs, for the quantizer's repair loop."""
    if accept is None:
        return None
    import numpy as np

    names = {s.backend_name: s for s in outs}

    def onnx(d: dict) -> dict:
        return {names[k].name: np.asarray(v).reshape(names[k].shape) for k, v in d.items()}

    return lambda refs, got: accept([onnx(r) for r in refs], [onnx(g) for g in got])


def _where(unsupported: dict[str, list[str]], model: Path) -> str:
    """Each unsupported layer type with the ONNX nodes of that op (pnnx numbers its own layers, so an ONNX op
    left as-is is named by its ONNX node), else pnnx's layer names (for pnnx's own ops, e.g. Tensor.slice)."""
    import onnx

    nodes: dict[str, list[str]] = {}
    for n in onnx.load(str(model), load_external_data=False).graph.node:
        nodes.setdefault(n.op_type, []).append(n.name or n.output[0])
    parts = []
    for t, layers in unsupported.items():
        onnx_nodes = nodes.get(t)
        parts.append(f"{t} (ONNX node {', '.join(onnx_nodes[:3])}; ncnn layer {', '.join(layers[:3])})"
                     if onnx_nodes else f"{t} (layer {', '.join(layers[:3])})")
    return "; ".join(parts)


NO_BATCH = 233  # pnnx's and ncnn.Mat's batch_index for "this blob has no batch axis"


def _batch_axes(py: Path) -> dict[str, int | None]:
    """Which axis of each blob pnnx treated as batch (None: none, all axes are in the Mat), read from the
    generated test script: `ncnn.Mat(in0.numpy(), batch_index=K)` and `out0.numpy(batch_index=K)`, where
    K = 233 means no batch axis (a 2-D [N, F] or 1-D input usually keeps all its axes) and K may be any axis
    (a [2, 1, H] LSTM state can be batched on an inner one)."""
    if not py.is_file():
        return {}
    text = py.read_text()
    found: dict[str, int | None] = {}
    for m in re.finditer(r'ex\.input\("(in\d+)",\s*ncnn\.Mat\(in\d+\.numpy\(\)(?:,\s*batch_index=(\d+))?\)', text):
        found[m[1]] = _axis(m[2])
    for m in re.finditer(r'(out\d+)\.numpy\((?:[^)]*batch_index=(\d+))?[^)]*\)', text):
        found[m[1]] = _axis(m[2])
    return found


def _axis(text: str | None) -> int | None:
    return None if text is None or int(text) == NO_BATCH else int(text)


def _batch_field(axis: int | None) -> str:
    """The manifest's `batch`: "kept" (ncnn sees every axis), "dropped" (axis 0), "dropped:K" (axis K)."""
    return "kept" if axis is None else "dropped" if axis == 0 else f"dropped:{axis}"


def batch_axis(spec: TensorSpec) -> int | None:
    if spec.batch == "dropped":
        return 0
    if spec.batch.startswith("dropped:"):
        return int(spec.batch.split(":", 1)[1])
    return None


def _dim(shape: list, axis: int) -> int:
    """A static axis length, or 2 for a dynamic one (it may be longer than 1)."""
    d = shape[axis] if axis < len(shape) else 1
    return d if isinstance(d, int) else 2


BACKEND = NcnnBackend()
