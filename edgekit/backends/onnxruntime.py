"""ONNX Runtime on CPU at fp32: the reference every check compares against, and a deployable format."""
from __future__ import annotations

import shutil

from ..manifest import Precision
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
        self._names = [o.name for o in self.session.get_outputs()]

    def _run(self, feeds):
        return dict(zip(self._names, self.session.run(self._names, feeds)))


class OnnxRuntimeBackend(Backend):
    name = "onnx"
    runtime = "ONNX Runtime"
    extra = "onnx"  # part of the core install
    requires = ("onnxruntime",)
    runtime_modules = ("onnxruntime",)

    def install_hint(self) -> str:
        return "pip install edgekit"

    def versions(self):
        return {"onnxruntime": dist_version("onnxruntime")}

    def convert(self, onnx_path, outdir, inputs, outputs, options):
        shutil.copyfile(onnx_path, outdir / "model.onnx")
        return Converted(files={"model": "model.onnx"}, inputs=inputs, outputs=outputs,
                         precision=Precision("fp32", "fp32", "fp32", {"providers": ["CPUExecutionProvider"]}),
                         tools=self.versions())

    def load(self, folder, manifest, threads=None, device="cpu"):
        from ..onnx.load import load_model

        self.require()
        # through load_model, not by path: its guard keeps external data inside the artifact's folder
        model = load_model(manifest.file(folder, "model"), check=False)
        return OrtRunner(manifest, folder, threads, model_bytes=model.SerializeToString())


BACKEND = OnnxRuntimeBackend()
