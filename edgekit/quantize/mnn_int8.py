"""MNN int8 through MNN's own quantizer (`_tools.mnnquant`, the native entry of MNN==3.6.1's wheel; never the
`mnnquant` console script, which imports `MNN.tools` and its usage-logging SDK), in a child process.

What MNN's quantizer takes (alibaba/MNN 4d2bdbd `tools/quantization/calibration.cpp`): a JSON config; KL
calibration (lines 575-800, 960-1000) honours `skip_quant_op_names` (674-764, 1089, 1153: the ops kept float),
EMA (`_quantizeModelEMA`, 1336-1455, which the upstream sequence example config uses) does not. Raw tensors
("input_type": "sequence", one `<input>.txt` per sample folder, `getModuleInputs` 238-330) crash KL here
(measured: SIGSEGV after "fake quant weights done" on PP-OCR cls; `_computeFeatureMapsRange` replaces the
input VARPs whose tensors the statistics still point to). And the model it writes keeps int8 tensor descriptions
(`_insertScale`, 1125-1150) on tensors around ops it was told to skip and on the SE blocks' pooling / ReLU6 /
HardSwish paths: PP-OCR cls then gave cosine 0.33 with every layer quantized and 0.71 with every op skipped.
edgekit keeps the int8 description only on the inputs of the int8 convolutions (so each int8 layer takes int8
and gives fp32, as ncnn's without requantize fusion), through MNN's JSON round trip: cosine 0.996 (with EMA on
BlazeFace: 0.71 -> 0.94).
So the calibration tensors, which edgekit made with
the manifest's preprocessing, go in as images MNN reproduces exactly: each sample's pixels recovered by
inverting that preprocessing (x * std + mean) / scale (whole numbers 0..255 for image-made samples, but for
the keep-ratio padding, 127.5, rounded), written at the
model's input size (MNN's resize is then the identity) with MNN's `mean` = mean / scale and `normal` =
scale / std, so MNN computes the same tensor. Samples that are not such images (.npy data, NHWC inputs)
use EMA on the raw tensors, without the skip list (the repair loop then cannot move layers to float, and the
drop is reported as measured).

MNN names its ops after the ONNX nodes (the node name or its output's); the skip list is built from the ONNX
layer names the shared ranking (onnx_qdq.ranking) gives, translated through the fp32 model's op names."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx

from ..errors import ConversionError
from ..subproc import run_tool, tail
from . import onnx_qdq
from .repair import Attempt, Repaired, measure, within_budget

# In the child: quantize; keep int8 tensors only at the inputs of the int8 convolutions (see the docstring);
# list the convolution-like ops (name, type, int8 weights or not) from MNN's JSON dump.
QUANT = """
import json, os, sys, _tools
src, dst, cfg = sys.argv[1:4]
def dump(model):
    _tools.mnnconvert(["mnnconvert", "-f", "MNN", "--modelFile", model, "--JsonFile", "ops.json"])
    with open("ops.json") as f:
        net = json.load(f)
    os.remove("ops.json")
    return net
if cfg != "-":
    ok = _tools.mnnquant(["mnnquant", src, dst, cfg])
    if ok not in (True, 0, None) or not os.path.isfile(dst):
        sys.exit(3)
    net = dump(dst)
    inputs = {i for o in net["oplists"] if "quanParameter" in (o.get("main") or {}) for i in o["inputIndexes"]}
    net["extraTensorDescribe"] = [d for d in net.get("extraTensorDescribe", []) if d.get("index") in inputs]
    with open("int8.json", "w") as f:
        json.dump(net, f)
    _tools.mnnconvert(["mnnconvert", "-f", "JSON", "--modelFile", "int8.json", "--MNNModel", "edgekit-int8-f32.mnn",
                       "--bizCode", "edgekit"])
    os.remove("int8.json")
    # the float layers' weights stored fp16 (MNN computes them in fp32 at precision high); -f JSON ignores --fp16
    _tools.mnnconvert(["mnnconvert", "-f", "MNN", "--modelFile", "edgekit-int8-f32.mnn", "--MNNModel", dst, "--fp16",
                       "--bizCode", "edgekit"])
    os.remove("edgekit-int8-f32.mnn")
else:
    net = dump(src)
rows = [[o.get("name", ""), o.get("type", ""), "quanParameter" in (o.get("main") or {})] for o in net["oplists"]
        if o.get("type", "").startswith("Convolution") or o.get("type") in ("Deconvolution", "InnerProduct")]
print("EDGEKIT-OPS " + json.dumps(rows))
"""
def _ops(proc) -> list[list]:
    for line in proc.stdout.splitlines():
        if line.startswith("EDGEKIT-OPS "):
            return json.loads(line[len("EDGEKIT-OPS "):])
    raise ConversionError("mnn", "MNN's quantizer gave no model listing", tail(proc.stdout))


def as_images(samples: list[dict], name: str, pre, layout: str) -> list[np.ndarray] | None:
    """The samples of input `name` as uint8 HxWx3 images that MNN's preprocessing turns back into them (to half a
    grey level: keep-ratio padding sits at 127.5), or None (no preprocessing, not 3 channels, out of range)."""
    if pre is None:
        return None
    scale, mean, std = float(pre.scale), np.float64(pre.mean), np.float64(pre.std)
    images = []
    for s in samples:
        x = np.asarray(s[name], np.float64)
        if x.ndim != 4 or x.shape[0] != 1:
            return None
        img = x[0] if layout == "NHWC" else x[0].transpose(1, 2, 0)
        if img.shape[-1] != 3 or scale == 0:
            return None
        pix = (img * std + mean) / scale
        if pix.min() < -0.5 or pix.max() > 255.5:  # not an image's range: calibrate on the tensors (EMA)
            return None
        images.append(np.clip(np.round(pix), 0, 255).astype(np.uint8))
    return images


def _config(work: Path, samples: list[dict], inputs, pre, skip: list[str], ema: bool = False) -> tuple[dict, str]:
    """MNN's quantizer config and the method used (KL on exact images, else EMA on raw tensors)."""
    import cv2

    calib = work / "calib"
    shutil.rmtree(calib, ignore_errors=True)
    calib.mkdir()
    spec = inputs[0]
    layout = "NHWC" if spec.shape[-1] == 3 and spec.shape[1] != 3 else "NCHW"
    # KL on images needs an NCHW input: with an NHWC one MNN's quantizer computes the wrong input shape, or
    # crashes (SIGSEGV) when given the shape (measured on BlazeFace)
    images = as_images(samples, spec.name, pre, layout) if len(inputs) == 1 and layout == "NCHW" and not ema \
        else None
    if images is not None:
        for i, img in enumerate(images):  # channel 0 written as R: MNN reads RGBA and keeps "RGB" order
            cv2.imwrite(str(calib / f"s{i:04d}.png"), np.ascontiguousarray(img[..., ::-1]))
        h, w = images[0].shape[:2]
        mean3, std3 = (np.broadcast_to(np.float64(v), 3) for v in (pre.mean, pre.std))  # one value: every channel
        return ({"format": "RGB", "mean": [float(m / pre.scale) for m in mean3],
                 "normal": [float(pre.scale / s) for s in std3], "width": w, "height": h, "path": str(calib) + "/",
                 "used_image_num": len(images), "feature_quantize_method": "KL",
                 "weight_quantize_method": "MAX_ABS", "skip_quant_op_names": skip},
                "KL (MNN's quantizer, per-channel MAX_ABS weights)")
    for i, s in enumerate(samples):
        d = calib / f"s{i:04d}"
        d.mkdir()
        for spec in inputs:
            np.savetxt(d / f"{spec.name}.txt", np.asarray(s[spec.name], np.float32).reshape(1, -1), fmt="%.7g")
        (d / "input.json").write_text(json.dumps(
            {"inputs": [{"name": spec.name, "shape": list(s[spec.name].shape)} for spec in inputs]}))
    return ({"path": str(calib), "used_sample_num": len(samples), "feature_quantize_method": "EMA",
             "weight_quantize_method": "MAX_ABS", "input_type": "sequence",
             "inputs": [{"name": spec.name, "shape": list(samples[0][spec.name].shape)} for spec in inputs]},
            "EMA (MNN's quantizer on raw tensors; its skip list applies to KL only)")


def mnn_names(onnx_path: Path, ops: list[list]) -> dict[str, str]:
    """ONNX layer name -> MNN op name (MNN names an op after its ONNX node, or that node's first output)."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    names = {o[0] for o in ops}
    out = {}
    for n in onnx_qdq.layers(onnx_qdq.named(model)):
        for candidate in (n.name, n.output[0]):
            if candidate in names:
                out[n.name] = candidate
                break
    return out


def quantize_within(onnx_path: Path, fp32_mnn: Path, dst: Path, samples: list[dict], inputs, outputs, pre,
                    max_drop: float, work: Path, run, accept=None) -> tuple[Repaired, str, int]:
    """MNN int8 of `fp32_mnn` at `dst`, within `max_drop` of ONNX Runtime fp32 on `samples` where MNN's skip
    list allows; `run(path, samples)` runs an MNN model. Returns the repair result, the method, layers int8."""
    listing = run_tool([sys.executable, "-c", QUANT, str(fp32_mnn), "-", "-"], cwd=work)
    to_mnn = mnn_names(onnx_path, _ops(listing))
    from_mnn = {v: k for k, v in to_mnn.items()}
    reference = onnx_qdq.run_onnx(onnx_path, samples, [s.name for s in outputs])
    state = {"ema": False}

    def attempt(keep: set) -> Attempt:
        while True:
            cfg, method = _config(work, samples, inputs, pre, sorted(to_mnn[k] for k in keep if k in to_mnn),
                                  state["ema"])
            (work / "quant.json").write_text(json.dumps(cfg))
            dst.unlink(missing_ok=True)
            proc = run_tool([sys.executable, "-c", QUANT, str(fp32_mnn), str(dst), "quant.json"], cwd=work)
            if proc.returncode == 0 or state["ema"]:
                break
            state["ema"] = True  # KL failed on this model (measured: exit 1 on PP-OCRv4 rec): EMA on the tensors
        if proc.returncode != 0:
            raise ConversionError("mnn", f"MNN's quantizer failed (exit {proc.returncode})", tail(proc.stdout))
        ops = _ops(proc)
        state.update(method=method, int8=sum(1 for o in ops if o[2]))
        quantized = [from_mnn.get(o[0], o[0]) for o in ops if o[2]]
        drop, passed = measure(reference, run(dst, samples), accept)
        return Attempt(quantized, drop, quantized, passed)

    ranked: list[str] = []

    def rank(a: Attempt) -> list[str]:
        if state.get("method", "").startswith("EMA"):
            return []  # EMA ignores the skip list: nothing to move
        if not ranked:
            ranked.extend(onnx_qdq.ranking(onnx_path, samples, work))
        return ranked

    r = within_budget(attempt, rank, max_drop)
    shutil.rmtree(work / "calib", ignore_errors=True)
    return r, state["method"], state["int8"]
