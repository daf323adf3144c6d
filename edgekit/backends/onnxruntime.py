"""ONNX Runtime on CPU at fp32: the reference every check compares against, and a deployable format; at int8,
ONNX Runtime's static QDQ quantization (edgekit.quantize.onnx_qdq), the int8 reference."""
from __future__ import annotations

import re
import shutil

from ..errors import ConversionError, EdgekitError
from ..manifest import Precision, format_shape
from ..options import spell
from .base import Backend, Converted, Runner, dist_version


class OrtRunner(Runner):
    def __init__(self, manifest, folder, threads, model_bytes: bytes):
        super().__init__(manifest, folder, threads)
        import onnxruntime as ort

        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4  # a failed run is raised as one line, not logged in red too
        state = ort.capi.onnxruntime_pybind11_state
        self._failures = (state.Fail, state.InvalidArgument, state.RuntimeException)  # looked up once, not per call
        self._names = [o.name for o in self.session.get_outputs()]

    def _run(self, feeds):
        try:
            return dict(zip(self._names, self.session.run(self._names, feeds, self._run_options)))
        except self._failures as e:  # ONNX Runtime refusing these inputs: their shapes or values, as a rule
            raise EdgekitError(f"ONNX Runtime cannot run the model on {_shapes(feeds)}: {_ort_reason(e)}; give "
                               f"another input shape ({spell('input_shapes')}, or inputs of that shape)") from None


def _shapes(feeds) -> str:
    return ", ".join(f"{name} {format_shape(list(arr.shape))}" for name, arr in feeds.items())


def _ort_reason(error: Exception) -> str:
    """ONNX Runtime's message, on one line, without its '[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :' prefix."""
    text = " ".join(str(error).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    node = re.match(r"Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: (.*)",
                    text)
    if node:  # "Reshape node 'r': the input tensor cannot be ...", without the source file and the C++ condition
        op, name, why = node.groups()
        why = re.sub(r"^\S+:\d+ .*? was false\. ", "", why)
        text = f"{op} node '{name}': {why}"
    return text if len(text) <= 300 else text[:297] + "..."


class OnnxRuntimeBackend(Backend):
    name = "onnx"
    runtime = "ONNX Runtime"
    extra = "onnx"  # part of the core install
    requires = ("onnxruntime",)
    runtime_modules = ("onnxruntime",)
    # no fp16: ONNX Runtime's CPU provider computes in fp32, and an fp16 model needs a graph converter
    # (onnxconverter-common) edgekit does not ship; asking for it is refused, never a silent fp32 model
    precisions = ("fp32", "int8")  # int8: static QDQ

    def install_hint(self) -> str:
        return "pip install edgekit"

    def versions(self):
        return {"onnxruntime": dist_version("onnxruntime")}

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        if options.precision == "int8":
            return self._int8(onnx_path, outdir, inputs, outputs, options)
        shutil.copyfile(onnx_path, outdir / "model.onnx")
        return Converted(files={"model": "model.onnx"}, inputs=inputs, outputs=outputs,
                         precision=Precision("fp32", "fp32", "fp32", {"providers": ["CPUExecutionProvider"]}),
                         tools=self.versions())

    def _int8(self, onnx_path, outdir, inputs, outputs, options):
        from ..quantize import onnx_qdq
        from ..quantize.repair import summary

        if not options.calibration_samples:
            raise EdgekitError("int8 needs calibration data")
        dst = outdir / "model.onnx"
        r = onnx_qdq.quantize_within(onnx_path, dst, options.calibration_samples, options.max_drop, options.workdir,
                                     options.accept)
        if not r.result:
            raise ConversionError("onnx", "int8: no Conv/MatMul/Gemm layer with constant weights to quantize")
        quantized = summary("MinMax (ONNX Runtime static QDQ, U8S8 per channel)", len(options.calibration_samples),
                            len(r.result), r, onnx_path.stat().st_size, dst.stat().st_size)
        weights = f"int8 x{len(r.result)} layers, fp32 x{len(r.keep)} kept float"
        return Converted(files={"model": "model.onnx"}, inputs=inputs, outputs=outputs,
                         precision=Precision("int8", weights, "int8 QDQ (ONNX Runtime CPU)",
                                             {"providers": ["CPUExecutionProvider"]}, quantized),
                         tools=self.versions())

    def load(self, folder, manifest, threads=None, device="cpu"):
        from ..onnx.load import load_model

        self.require()
        # through load_model, not by path: its guard keeps external data inside the artifact's folder
        model = load_model(manifest.file(folder, "model"), check=False)
        return OrtRunner(manifest, folder, threads, model_bytes=model.SerializeToString())


BACKEND = OnnxRuntimeBackend()
