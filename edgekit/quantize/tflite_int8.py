"""TFLite int8 through TensorFlow's own converter, in a child process (TensorFlow never enters ours): full-integer
post-training quantization of the SavedModel onnx2tf writes (`-osd`), int8 weights per channel and int8
activations, the input and output tensors left float (so the runner's I/O is the fp32 artifact's), with
`tf.lite.experimental.QuantizationDebugger` for the per-op float fallback.

Why this path (measured on PP-OCR cls and BlazeFace): ai-edge-quantizer, which needs no TensorFlow, needs
ai-edge-litert >= 2.1.4, beyond our pin; onnx2tf's `-oiqt` quantizes everything and takes its calibration as
one `-cind` file with a mean/std, and has no per-op fallback. TensorFlow's converter takes our calibration
samples as they are (`representative_dataset`, NCHW ONNX samples turned NHWC as the fp32 artifact's inputs are)
and its debugger both ranks the ops (layer statistics: RMSE of each op's int8 output against its float one, in
units of the output's scale, the measure TensorFlow's debugger guide ranks by) and rebuilds the model with chosen
ops kept float (`denylisted_nodes`, the ops' output tensor names) from one calibration. The calibrated model is
cached in the work folder, so each repair round only requantizes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from ..subproc import run_tool, tail
from .repair import Attempt, Repaired, measure, within_budget

# In the child: calibrate once (cached), quantize with the ops in cfg["float"] kept float, and on the first run
# print the debugger's per-op statistics (tensor name -> RMSE / scale of its int8 output).
QUANT = r"""
import csv, io, json, os, re, sys
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert
saved, data, cfg, dst = sys.argv[1:5]
with open(cfg) as f:
    cfg = json.load(f)
z = np.load(data)
sig = tf.saved_model.load(saved).signatures["serving_default"]
names = sorted(sig.structured_input_signature[1])
keys = []
for i, k in enumerate(cfg["inputs"]):
    safe = re.sub(r"[^A-Za-z0-9_]", "_", k)
    keys.append(k if k in names else safe if safe in names else names[i])
def dataset():
    for i in range(cfg["samples"]):
        yield {n: z[f"{i}/{k}"] for n, k in zip(keys, cfg["inputs"])}
def listed():  # the debugger feeds its interpreters in input order
    for d in dataset():
        yield [d[n] for n in names]
cached = "calibrated.tflite"
if os.path.isfile(cached) and not cfg["stats"]:
    model = convert.mlir_quantize(open(cached, "rb").read(), fully_quantize=False,
                                  denylisted_nodes=cfg["float"] or None)
else:
    conv = tf.lite.TFLiteConverter.from_saved_model(saved)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=cfg["float"] or None)
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=listed, debug_options=opts)
    open(cached, "wb").write(dbg.calibrated_model)
    model = dbg.get_nondebug_quantized_model()
    if cfg["stats"]:
        dbg.run()
        buf = io.StringIO()
        dbg.layer_statistics_dump(buf)
        buf.seek(0)
        stats = {}
        for r in csv.DictReader(buf):
            scale = float(r["scale"] or 0)
            stats[r["tensor_name"]] = float(r["mean_squared_error"]) ** 0.5 / scale if scale else 0.0
        print("EDGEKIT-STATS " + json.dumps(stats))
with open(dst, "wb") as f:
    f.write(model)
"""

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL", "CONV_3D")


def int8_ops(path: Path) -> tuple[list[str], int]:
    """The ops of a .tflite whose output is int8 (by output tensor name, the names `denylisted_nodes` takes),
    and how many weighted ops (convolutions, fully connected) hold int8 weights."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    quantized, weighted = [], 0
    for op in it._get_ops_details():
        outs = [tensors[i] for i in op["outputs"] if i in tensors]
        if op["op_name"] != "QUANTIZE" and outs and outs[0]["dtype"] == np.int8:
            quantized.append(outs[0]["name"])
        if op["op_name"] in WEIGHTED and len(op["inputs"]) > 1 and op["inputs"][1] in tensors \
                and tensors[op["inputs"][1]]["dtype"] == np.int8:
            weighted += 1
    return quantized, weighted


def quantize_within(onnx_path: Path, saved: Path, dst: Path, samples: list[dict], tf_samples: list[dict], inputs,
                    outputs, max_drop: float, work: Path, run, accept=None) -> tuple[Repaired, int]:
    """TFLite int8 of the SavedModel `saved` at `dst`, ops kept float (the debugger's worst first) until the
    drop against ONNX Runtime fp32 on `samples` is within `max_drop`; `tf_samples` are the same samples laid out
    as the TensorFlow model takes them, `run(path, samples)` runs a .tflite. Returns the repair result and the
    number of weighted ops with int8 weights."""
    from . import onnx_qdq

    data = work / "calibration.npz"
    np.savez(data, **{f"{i}/{k}": v for i, s in enumerate(tf_samples) for k, v in s.items()})
    reference = onnx_qdq.run_onnx(onnx_path, samples, [s.name for s in outputs])
    stats: dict[str, float] = {}
    state = {}

    def attempt(keep: set) -> Attempt:
        cfg = {"inputs": [s.name for s in inputs], "samples": len(samples), "float": sorted(keep),
               "stats": not stats}
        (work / "tflite_int8.json").write_text(json.dumps(cfg))
        dst.unlink(missing_ok=True)
        proc = run_tool([sys.executable, "-c", QUANT, str(saved), str(data), "tflite_int8.json", str(dst)],
                        cwd=work)
        if proc.returncode != 0 or not dst.is_file():
            raise ConversionError("tflite", f"TensorFlow's int8 conversion failed (exit {proc.returncode})",
                                  tail(proc.stdout))
        for line in proc.stdout.splitlines():
            if line.startswith("EDGEKIT-STATS "):
                stats.update(json.loads(line[len("EDGEKIT-STATS "):]))
        quantized, state["int8"] = int8_ops(dst)
        drop, passed = measure(reference, run(dst, samples), accept)
        return Attempt(quantized, drop, quantized, passed)

    def rank(a: Attempt) -> list[str]:
        return sorted(stats, key=stats.get, reverse=True)

    r = within_budget(attempt, rank, max_drop)
    data.unlink(missing_ok=True)
    return r, state["int8"]
