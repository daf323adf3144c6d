"""MNN, converted by MNN's converter through its native Python entry, run with MNN's Session API.

Not the `mnnconvert` console script or `MNN.tools`: importing those pip-installs a logging SDK and sends
usage logs (measured: docs/architecture.md, "Backends"). The converter exits 0 even when it reports unsupported ops,
so its output is parsed. The Session API is used because MNN's Module API gave wrong numbers on ppocr cls here.
int8: MNN's quantizer on the fp32 model, within the accuracy budget (edgekit.quantize.mnn_int8)."""
from __future__ import annotations

import re
import shutil
import sys

import numpy as np

from ..errors import ConversionError, EdgekitError
from ..manifest import Precision, TensorSpec
from ..subproc import run_tool, tail
from .base import Backend, Converted, Recipe, Runner, dist_version, restore_output

CONVERT = """
import sys, _tools
ok = _tools.mnnconvert(["mnnconvert", "-f", "ONNX", "--modelFile", "model.onnx", "--MNNModel", "model.mnn",
                        "--bizCode", "edgekit", "--keepInputFormat"] + sys.argv[1:])
sys.exit(0 if ok in (True, 0, None) else 3)
"""

PRECISION_MODE = {"fp32": "high", "fp16": "low"}


class MnnRunner(Runner):
    def __init__(self, manifest, folder, threads):
        super().__init__(manifest, folder, threads)
        import MNN

        self._mnn = MNN
        self.interpreter = MNN.Interpreter(str(manifest.file(folder, "model")))
        config = dict(manifest.precision.settings)
        if threads:
            config["numThread"] = threads
        self.session = self.interpreter.createSession(config)
        self._shapes = {}

    def _run(self, feeds):
        MNN, it, s = self._mnn, self.interpreter, self.session
        resized = False
        for spec in self.inputs:
            arr = feeds[spec.name]
            tensor = it.getSessionInput(s, spec.backend_name)
            if self._shapes.get(spec.name) != arr.shape:
                it.resizeTensor(tensor, tuple(arr.shape))
                self._shapes[spec.name] = arr.shape
                resized = True
        if resized:
            it.resizeSession(s)
        for spec in self.inputs:
            arr = feeds[spec.name]
            tensor = it.getSessionInput(s, spec.backend_name)
            host = MNN.Tensor(tuple(arr.shape), _halide(MNN, arr.dtype), arr, MNN.Tensor_DimensionType_Caffe)
            tensor.copyFrom(host)
        it.runSession(s)
        out = {}
        for spec in self.outputs:
            tensor = it.getSessionOutput(s, spec.backend_name)
            shape = tuple(tensor.getShape())
            host = MNN.Tensor(shape, tensor.getDataType(), np.zeros(shape, dtype=np.dtype(spec.dtype)),
                              MNN.Tensor_DimensionType_Caffe)
            tensor.copyToHostTensor(host)
            out[spec.name] = restore_output(np.array(host.getNumpyData(), copy=True), spec, "mnn")
        return out

    def close(self):
        self.session = None
        self.interpreter = None


def _halide(MNN, dtype):
    return {np.dtype("float32"): MNN.Halide_Type_Float, np.dtype("int32"): MNN.Halide_Type_Int,
            np.dtype("int64"): MNN.Halide_Type_Int64, np.dtype("uint8"): MNN.Halide_Type_Uint8}[np.dtype(dtype)]


class MnnBackend(Backend):
    name = "mnn"
    runtime = "MNN"
    extra = "mnn"
    runtime_modules = ("MNN",)
    extra_rungs = (Recipe("rewrites", ("simplify", "rnn-unroll", "dequantize-dynamic"), (),
                          "op-family rewrites: LSTM/GRU unrolled (MNN's converter crashes on LSTM, or its runtime "
                          "gives 0x0x0x0 outputs with state), dynamic quantization as float (no ConvInteger)"),)
    requires = ("MNN",)
    converter_requires = ("_tools",)
    precisions = ("fp32", "fp16", "int8")

    def versions(self):
        return {"MNN": dist_version("MNN")}

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        work = options.workdir
        shutil.copyfile(onnx_path, work / "model.onnx")
        extra = ["--fp16"] if options.precision == "fp16" else []
        proc = run_tool([sys.executable, "-c", CONVERT, *extra], cwd=work)
        log = proc.stdout
        m = re.search(r"These Op Not Support:?\s*(.*)", log)
        if m:
            raise ConversionError("mnn", f"MNN's converter does not support: {m[1].strip()}", tail(log))
        if proc.returncode != 0 or not (work / "model.mnn").is_file() or "Converted Success" not in log:
            raise ConversionError("mnn", f"MNN's converter failed (exit {proc.returncode})", tail(log))
        ins = [TensorSpec(s.name, s.dtype, s.shape, s.name) for s in inputs]
        outs = [TensorSpec(s.name, s.dtype, s.shape, s.name) for s in outputs]
        mode = PRECISION_MODE.get(options.precision, "high")
        settings = {"backend": "CPU", "precision": mode, "numThread": 1}
        weights = "fp16" if extra else "fp32"
        compute = "fp32" if mode == "high" else "fp16 where the CPU has it, else fp32"
        quantized = None
        if options.precision == "int8":
            weights, compute, quantized = _int8(onnx_path, work / "model.mnn", outdir / "model.mnn", ins, outs,
                                                settings, options)
        else:
            shutil.copyfile(work / "model.mnn", outdir / "model.mnn")
        return Converted(files={"model": "model.mnn"}, inputs=ins, outputs=outs,
                         precision=Precision(options.precision, weights, compute, settings, quantized),
                         tools=self.versions())

    def load(self, folder, manifest, threads=None, device="cpu"):
        self.require()
        return MnnRunner(manifest, folder, threads)


def _int8(onnx_path, fp32, dst, ins, outs, settings, options) -> tuple[str, str, dict]:
    """Quantize the fp32 MNN model into `dst` within the budget; the precision fields for the manifest."""
    from ..manifest import Manifest
    from ..quantize import mnn_int8
    from ..quantize.repair import summary

    if not options.calibration_samples:
        raise EdgekitError("int8 needs calibration data")
    work = options.workdir / "int8"
    work.mkdir(exist_ok=True)

    def run(path, samples):
        m = Manifest("mnn", {"model": path.name}, {}, ins, outs, Precision("int8", settings=settings))
        runner = MnnRunner(m, path.parent, 1)
        try:
            return [runner(s) for s in samples]
        finally:
            runner.close()

    r, method, int8 = mnn_int8.quantize_within(onnx_path, fp32, dst, options.calibration_samples, ins, outs,
                                               options.preprocessing, options.max_drop, work, run, options.accept)
    if not int8:
        raise ConversionError("mnn", "int8: MNN's quantizer quantized no layer of this model")
    quantized = summary(method, len(options.calibration_samples), int8, r, fp32.stat().st_size, dst.stat().st_size)
    return f"int8 x{int8} layers, fp32 x{len(r.keep)} kept float", "int8 + fp32", quantized


BACKEND = MnnBackend()
