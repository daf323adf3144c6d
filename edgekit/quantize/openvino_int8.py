"""OpenVINO int8 through NNCF's post-training quantization (`nncf.quantize`, the `openvino-int8` extra), in a
child process, on our calibration tensors (an `nncf.Dataset` of the samples edgekit made with the manifest's
preprocessing), with the layers kept float in its `ignored_scope`.

NNCF inserts FakeQuantize on the activations feeding each quantizable op and stores those ops' weights in int8;
OpenVINO's CPU plugin then runs them in int8. The accuracy repair is edgekit's (edgekit.quantize.repair, the
same loop as every format, ranked by onnx_qdq.ranking) rather than `nncf.quantize_with_accuracy_control`, so
that every format reports the same drop, measured the same way, and names the layers it kept float.

Size (issue 13): the IR edgekit's backend reads (`Core.read_model` of the ONNX file) still has the ONNX
frontend's shape subgraphs (ShapeOf -> Concat -> Reshape of each grouped convolution's weight), so NNCF's
weight FakeQuantize sat behind a Reshape and was never compressed: the int8 IR of PP-OCR cls was 1.06x the fp32
one. The child folds them first (`apply_moc_transformations(cf=True)`, what `ovc` / `convert_model` do), and
then every quantized weight is an i8 constant with a per-channel scale; `compress_to_fp16` stores the weights
of the layers kept float as f16 constants that the CPU plugin decompresses at compile time (fp32 compute at
edgekit's f32 hint). What is left is the .xml text, ~0.5 kB per op, with four constants per FakeQuantize:
on a small model (cls: 0.5 MB of weights) the .xml alone is ~0.4x the fp32 artifact.

OpenVINO names each op after its ONNX node (a Conv becomes "<node>/WithoutBiases" plus an Add), so the ignored
scope is one pattern per ONNX layer name. The child imports OpenVINO and NNCF with their telemetry off (the
backend's `openvino_module` does the same in-process)."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import ConversionError, EdgekitError
from ..subproc import run_tool, tail
from . import onnx_qdq
from .repair import Attempt, Repaired, measure, within_budget

EXTRA = "openvino-int8"

QUANT = """
import json, sys
sys.modules["openvino_telemetry"] = None  # OpenVINO and NNCF fall back to their stubs: no usage events
import numpy as np
import openvino as ov
import nncf
from openvino._offline_transformations import apply_moc_transformations
src, data, cfg, dst = sys.argv[1:5]
with open(cfg) as f:
    cfg = json.load(f)
z = np.load(data)
items = [{k: z[f"{i}/{k}"] for k in cfg["inputs"]} for i in range(cfg["samples"])]
model = ov.Core().read_model(src)
apply_moc_transformations(model, cf=True)  # fold the frontend's shape subgraphs, as ovc does (see the docstring)
scope = nncf.IgnoredScope(patterns=cfg["ignored"], validate=False) if cfg["ignored"] else None
q = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), ignored_scope=scope)
ov.save_model(q, dst, compress_to_fp16=True)  # the float layers' weights fp16 (see the docstring)
kinds = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData", "GroupConvolutionBackpropData")
rows = [[op.get_friendly_name(), op.get_type_name(),
         op.input_value(0).get_node().get_type_name() == "FakeQuantize"]
        for op in q.get_ordered_ops() if op.get_type_name() in kinds]
print("EDGEKIT-OPS " + json.dumps(rows))
"""


def require() -> None:
    """NNCF must be installed: a clear error naming the extra otherwise (before any work)."""
    if importlib.util.find_spec("nncf") is None:
        raise EdgekitError(f"OpenVINO int8 needs NNCF, which is not installed: pip install 'edgekit[{EXTRA}]'")


def version() -> str | None:
    from ..backends.base import dist_version

    return dist_version("nncf")


def _onnx_name(friendly: str, names: list[str]) -> str:
    """The ONNX layer an OpenVINO op came from: the longest layer name that is the op's name or its prefix."""
    hits = [n for n in names if friendly == n or friendly.startswith(n + "/")]
    return max(hits, key=len) if hits else friendly


def quantize_within(onnx_path: Path, fp32_xml: Path, dst: Path, samples: list[dict], outputs, max_drop: float,
                    work: Path, run, accept=None) -> tuple[Repaired, int]:
    """NNCF int8 of `fp32_xml` at `dst` (.xml), within `max_drop` of ONNX Runtime fp32 on `samples`;
    `run(xml, samples)` runs an OpenVINO model. Returns the repair result and the number of int8 layers."""
    require()
    import onnx

    names = [n.name for n in onnx_qdq.layers(onnx_qdq.named(onnx.load(str(onnx_path), load_external_data=False)))]
    data = work / "calibration.npz"
    np.savez(data, **{f"{i}/{k}": v for i, s in enumerate(samples) for k, v in s.items()})
    reference = onnx_qdq.run_onnx(onnx_path, samples, [s.name for s in outputs])
    state = {}

    def attempt(keep: set) -> Attempt:
        cfg = {"inputs": list(samples[0]), "samples": len(samples),
               "ignored": [re.escape(n) + "(/.*)?" for n in sorted(keep)]}
        (work / "nncf.json").write_text(json.dumps(cfg))
        proc = run_tool([sys.executable, "-c", QUANT, str(fp32_xml), str(data), "nncf.json", str(dst)], cwd=work)
        rows = next((json.loads(ln[len("EDGEKIT-OPS "):]) for ln in proc.stdout.splitlines()
                     if ln.startswith("EDGEKIT-OPS ")), None)
        if proc.returncode != 0 or rows is None or not dst.is_file():
            raise ConversionError("openvino", f"NNCF's quantization failed (exit {proc.returncode})", tail(proc.stdout))
        quantized = sorted({_onnx_name(r[0], names) for r in rows if r[2]})
        state["int8"] = sum(1 for r in rows if r[2])
        drop, passed = measure(reference, run(dst, samples), accept)
        return Attempt(quantized, drop, quantized, passed)

    ranked: list[str] = []

    def rank(a: Attempt) -> list[str]:
        if not ranked:
            ranked.extend(onnx_qdq.ranking(onnx_path, samples, work))
        return ranked

    r = within_budget(attempt, rank, max_drop)
    data.unlink(missing_ok=True)
    return r, state["int8"]
