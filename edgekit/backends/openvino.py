"""OpenVINO IR (xml/bin), read by OpenVINO's ONNX frontend and saved uncompressed, run on the CPU plugin.

`ov.save_model` compresses weights to fp16 by default and the CPU plugin runs bf16 on CPUs with AVX-512
bf16 unless told otherwise (PP-OCRv4 det: cosine 0.983 by default, 0.9997 at f32). fp32 here means both are
off. The model is read with `Core.read_model` rather than `ovc`/`convert_model`.

Telemetry: `import openvino` itself starts OpenVINO's telemetry (ovc's __init__ sends an event to Google
Analytics). Every place that imports `openvino_telemetry` falls back to OpenVINO's own stub when that import
fails, so `openvino_module()` makes it fail before openvino is first imported in the process.

int8: NNCF post-training quantization within the accuracy budget (edgekit.quantize.openvino_int8; the
`openvino-int8` extra)."""
from __future__ import annotations

import re
import sys

import numpy as np

from ..errors import ConversionError, EdgekitError
from ..manifest import Precision, TensorSpec
from .base import Backend, Converted, Runner, dist_version, restore_output

HINT = {"fp32": "f32", "fp16": "f16", "int8": "f32"}  # int8: the FakeQuantize'd ops int8, the rest fp32


def openvino_module():
    """`import openvino` with its telemetry switched off (see the module docstring)."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


class OpenVinoRunner(Runner):
    def __init__(self, manifest, folder, threads):
        super().__init__(manifest, folder, threads)
        ov = openvino_module()

        core = ov.Core()
        config = dict(manifest.precision.settings)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(str(manifest.file(folder, "xml")), "CPU", config)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")  # what the plugin really chose
        name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self._effective = {"f32": "fp32", "f16": "fp16"}.get(name, name)
        self.request = self.compiled.create_infer_request()
        self._outputs = [(s, self.compiled.output(s.backend_name)) for s in self.outputs]

    @property
    def effective_precision(self) -> str:
        return self._effective

    def _run(self, feeds):
        # share_inputs: the request reads the (contiguous) feeds in place, no copy; share_outputs: no OVDict of
        # copies, the one copy below detaches the outputs from the request's buffers (benchmarks/runner_overhead.py)
        res = self.request.infer({s.backend_name: feeds[s.name] for s in self.inputs}, share_inputs=True,
                                 share_outputs=True)
        return {spec.name: restore_output(np.array(res[port], copy=True), spec, "openvino")
                for spec, port in self._outputs}

    def close(self):
        self.request = None
        self.compiled = None


def frontend_summary(message: str) -> str:
    """The line of an OpenVINO frontend error that names what failed (e.g. "No conversion rule found for
    operations: Det-14"), without the C++ source locations around it."""
    lines = [ln.strip(" -") for ln in message.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"(Exception from|Check '.*' failed at) src/", ln)]
    named = [ln for ln in useful if "operation" in ln.lower() or "node" in ln.lower()]
    return "; ".join(named or useful[-1:] or lines[:1])


class OpenVinoBackend(Backend):
    name = "openvino"
    runtime = "OpenVINO"
    extra = "openvino"
    requires = ("openvino",)
    precisions = ("fp32", "fp16", "int8")
    precision_requires = {"int8": ("nncf", "openvino-int8")}

    def import_runtime(self):
        openvino_module()  # with telemetry off, whoever imports it first

    def versions(self):
        return {"openvino": dist_version("openvino")}

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        ov = openvino_module()

        try:
            model = ov.Core().read_model(str(onnx_path))
        except RuntimeError as e:  # OpenVINO's message: a C++ location, then a summary worth one line
            raise ConversionError("openvino", f"OpenVINO's ONNX frontend failed: {frontend_summary(str(e))}",
                                  str(e)) from None
        fp16 = options.precision == "fp16"
        int8 = options.precision == "int8"
        xml = (options.workdir / "fp32.xml") if int8 else (outdir / "model.xml")
        ov.save_model(model, str(xml), compress_to_fp16=fp16)
        ins = [TensorSpec(s.name, s.dtype, s.shape, s.name) for s in inputs]
        outs = [TensorSpec(s.name, s.dtype, s.shape, s.name) for s in outputs]
        settings = {"INFERENCE_PRECISION_HINT": HINT[options.precision], "PERFORMANCE_HINT": "LATENCY",
                    "NUM_STREAMS": 1}
        compute = "fp32" if not fp16 else "fp16 where the CPU has it (bf16 on AVX-512 bf16 CPUs), else fp32"
        weights, quantized, tools = ("fp16" if fp16 else "fp32"), None, self.versions()
        if int8:
            weights, compute, quantized = _int8(onnx_path, xml, outdir / "model.xml", ins, outs, settings, options)
            tools["nncf"] = dist_version("nncf")
        return Converted(files={"xml": "model.xml", "bin": "model.bin"}, inputs=ins, outputs=outs,
                         precision=Precision(options.precision, weights, compute, settings, quantized), tools=tools)

    def load(self, folder, manifest, threads=None, device="cpu"):
        self.require()
        return OpenVinoRunner(manifest, folder, threads)


def _int8(onnx_path, fp32_xml, dst, ins, outs, settings, options) -> tuple[str, str, dict]:
    """NNCF int8 of the fp32 IR into `dst` within the budget; the precision fields for the manifest."""
    from ..manifest import Manifest
    from ..quantize import openvino_int8
    from ..quantize.repair import summary

    if not options.calibration_samples:
        raise EdgekitError("int8 needs calibration data")

    def run(xml, samples):
        m = Manifest("openvino", {"xml": xml.name, "bin": xml.with_suffix(".bin").name}, {}, ins, outs,
                     Precision("int8", settings=settings))
        runner = OpenVinoRunner(m, xml.parent, 1)
        try:
            return [runner(s) for s in samples]
        finally:
            runner.close()

    r, int8 = openvino_int8.quantize_within(onnx_path, fp32_xml, dst, options.calibration_samples, outs,
                                            options.max_drop, options.workdir, run, options.accept)
    if not int8:
        raise ConversionError("openvino", "int8: NNCF quantized no layer of this model")
    size = lambda xml: xml.stat().st_size + xml.with_suffix(".bin").stat().st_size  # noqa: E731
    quantized = summary("NNCF post-training quantization (MinMax, FakeQuantize on activations, int8 weights)",
                        len(options.calibration_samples), int8, r, size(fp32_xml), size(dst),
                        weights_ratio=round(dst.with_suffix(".bin").stat().st_size
                                            / fp32_xml.with_suffix(".bin").stat().st_size, 4))
    return (f"int8 x{int8} layers, fp32 x{len(r.keep)} kept float", "int8 (FakeQuantize'd ops) + fp32",
            quantized)


BACKEND = OpenVinoBackend()
