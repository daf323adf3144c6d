"""What the edgekit runner costs over each runtime's own Python API.

For each format, PP-OCR mobile v2 cls (a ~1 ms model, where overhead shows) is exported once, then timed two
ways in one process, interleaved by edgekit's harness (same blocks, shuffled order, settle pauses):
  edgekit: runner({"x": nchw})                       -> outputs in ONNX names/layout (what users call)
  raw:     the runtime's own API in a tight loop on the same loaded runtime objects (--separate-instances: a
           second load of the same file with the same settings/threads), fed the input already in the
           backend's layout, output fetched as a numpy array.
Prints the ratio of medians per format (goal: <= 1.03) and writes JSON with every sample.

    python benchmarks/runner_overhead.py [--threads 1] [--min-seconds 5] [--rounds 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMATS = ["onnx", "ncnn", "mnn", "tflite", "openvino"]


def raw_onnx(folder, m, threads, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(folder / m.files["model"]), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: x})


def raw_ncnn(folder, m, threads, x):
    import ncnn

    net = ncnn.Net()
    for k, v in m.precision.settings.items():
        setattr(net.opt, k, v)
    net.opt.num_threads = threads
    net.load_param(str(folder / m.files["param"]))
    net.load_model(str(folder / m.files["bin"]))
    x3 = np.ascontiguousarray(x[0])  # ncnn has no batch axis
    inp, out = m.inputs[0].backend_name, m.outputs[0].backend_name

    def call():
        ex = net.create_extractor()
        ex.input(inp, ncnn.Mat(x3))
        _, mat = ex.extract(out)
        return np.array(mat)

    return call


def _mnn_call(it, sess, tin, tout, x):
    """One MNN Session call as MNN's own Python API does it: copy in, run, copy out (Caffe = NCHW)."""
    import MNN

    shape = tuple(tout.getShape())

    def call():
        tin.copyFrom(MNN.Tensor(x.shape, MNN.Halide_Type_Float, x, MNN.Tensor_DimensionType_Caffe))
        it.runSession(sess)
        host = MNN.Tensor(shape, MNN.Halide_Type_Float, np.zeros(shape, np.float32), MNN.Tensor_DimensionType_Caffe)
        tout.copyToHostTensor(host)
        return np.array(host.getNumpyData(), copy=True)

    return call


def raw_mnn(folder, m, threads, x):
    import MNN

    it = MNN.Interpreter(str(folder / m.files["model"]))
    cfg = dict(m.precision.settings)
    cfg["numThread"] = threads
    sess = it.createSession(cfg)
    tin = it.getSessionInput(sess, m.inputs[0].backend_name)
    it.resizeTensor(tin, x.shape)
    it.resizeSession(sess)
    return _mnn_call(it, sess, tin, it.getSessionOutput(sess, m.outputs[0].backend_name), x)


def _tflite_call(it, m, x):
    """One LiteRT call as its own Python API does it, on input already in the .tflite's (NHWC) layout."""
    i_idx = it.get_input_details()[0]["index"]
    o_idx = {d["name"]: d["index"] for d in it.get_output_details()}[m.outputs[0].backend_name]
    xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if m.inputs[0].layout == "NHWC" else x

    def call():
        it.set_tensor(i_idx, xin)
        it.invoke()
        return it.get_tensor(o_idx)

    return call


def raw_tflite(folder, m, threads, x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(folder / m.files["model"]), num_threads=threads)
    it.allocate_tensors()
    return _tflite_call(it, m, x)


def raw_openvino(folder, m, threads, x):
    import openvino as ov

    cfg = dict(m.precision.settings)
    cfg["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(str(folder / m.files["xml"]), "CPU", cfg)
    req = compiled.create_infer_request()

    def call():
        req.infer({0: x})
        return np.array(req.get_output_tensor(0).data, copy=True)

    return call


RAW = {"onnx": raw_onnx, "ncnn": raw_ncnn, "mnn": raw_mnn, "tflite": raw_tflite, "openvino": raw_openvino}


# The same drivers on the runner's own loaded runtime objects (default): two loads of one file can differ by a
# few percent from where their buffers land, which would drown a 1-3% overhead; sharing the loaded objects leaves
# only the difference between the two call paths.
def same_onnx(runner, m, x):
    sess = runner.session
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: x})


def same_ncnn(runner, m, x):
    import ncnn

    net = runner.net
    x3 = np.ascontiguousarray(x[0])
    inp, out = m.inputs[0].backend_name, m.outputs[0].backend_name

    def call():
        ex = net.create_extractor()
        ex.input(inp, ncnn.Mat(x3).clone())  # clone as the runner does: ncnn crashes on in-place first layers otherwise
        _, mat = ex.extract(out)
        return np.array(mat)

    return call


def same_mnn(runner, m, x):
    it, sess = runner.interpreter, runner.session
    runner({m.inputs[0].name: x})  # sized for x
    tin = it.getSessionInput(sess, m.inputs[0].backend_name)
    return _mnn_call(it, sess, tin, it.getSessionOutput(sess, m.outputs[0].backend_name), x)


def same_tflite(runner, m, x):
    return _tflite_call(runner.interpreter, m, x)


def same_openvino(runner, m, x):
    req = runner.compiled.create_infer_request()

    def call():
        req.infer({0: x})
        return np.array(req.get_output_tensor(0).data, copy=True)

    return call


SAME = {"onnx": same_onnx, "ncnn": same_ncnn, "mnn": same_mnn, "tflite": same_tflite, "openvino": same_openvino}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=5.0, help="timed seconds per subject per round")
    ap.add_argument("--rounds", type=int, default=3, help="independent interleaved measurements; the ratio "
                    "reported is the median of the per-round ratios")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--out", default=None, help="keep the exported artifacts here (default: a temp folder)")
    ap.add_argument("--artifacts", default=None, metavar="DIR",
                    help="use artifacts already exported into DIR (DIR/*cls*_<format>) instead of exporting: "
                         "for a machine that has the runtimes but not the converters")
    ap.add_argument("--separate-instances", action="store_true",
                    help="load the artifact a second time for the raw loop (default: drive the runner's own "
                         "loaded runtime objects, so only the call paths differ)")
    ap.add_argument("--json", default="runner_overhead.json")
    args = ap.parse_args(argv)

    import edgekit
    from edgekit.harness import latency
    from edgekit.harness.inputs import generated_inputs
    from edgekit.manifest import Manifest

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    tmp = tempfile.TemporaryDirectory(prefix="edgekit-overhead-")
    if args.artifacts:
        from types import SimpleNamespace

        results = []
        for fmt in formats:
            found = sorted(Path(args.artifacts).glob(f"*cls*_{fmt}"))
            results.append(SimpleNamespace(format=fmt, ok=bool(found), path=found[0] if found else None,
                                           error=f"no *cls*_{fmt} in {args.artifacts}"))
        model_name = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    else:
        from edgekit.fixtures import OCR_MODELS

        fx = OCR_MODELS["ppocr-cls"]
        out = Path(args.out or tmp.name)
        results = edgekit.export(fx.path, target=",".join(formats), out=out, input_shapes=[fx.input_shape],
                                 preprocessing=fx.preprocessing, force=True)
        model_name = fx.path.name
    report = {"model": model_name, "threads": args.threads, "separate_instances": args.separate_instances,
              "rounds": args.rounds, "min_seconds": args.min_seconds,
              "environment": latency.environment(), "formats": {}}
    print(f"{'format':10} {'edgekit ms':>11} {'raw ms':>9} {'ratio':>7}   per-round ratios")
    worst = 0.0
    for r in results:
        if not r.ok:
            print(f"{r.format:10} export failed: {r.error}")
            continue
        m = Manifest.load(r.path)
        runner = edgekit.load(r.path, threads=args.threads)
        feeds, _ = generated_inputs(runner.inputs, m.preprocessing, seed=0)
        x = feeds[runner.inputs[0].name]
        raw = (RAW[r.format](r.path, m, args.threads, x) if args.separate_instances
               else SAME[r.format](runner, m, x))
        ref = runner(feeds)[runner.outputs[0].name]  # same numbers both ways, or the comparison means nothing
        got = np.asarray(raw()).reshape(ref.shape)
        assert np.allclose(ref, got, atol=1e-4), f"{r.format}: raw API and runner disagree"
        subjects = {"edgekit": lambda: runner(feeds), "raw": raw}
        rounds = []
        for k in range(args.rounds):
            plan = latency.TimingPlan(warmup=20, iterations=200, min_seconds=args.min_seconds, seed=k)
            measured, _ = latency.measure(subjects, plan)
            e, w = (latency.summarize(measured[n].samples) for n in ("edgekit", "raw"))
            rounds.append({"edgekit": e.to_dict(), "raw": w.to_dict(), "ratio": e.median / w.median,
                           "edgekit_samples_ms": [s * 1e3 for s in measured["edgekit"].samples],
                           "raw_samples_ms": [s * 1e3 for s in measured["raw"].samples]})
        ratios = [rd["ratio"] for rd in rounds]
        ratio = float(np.median(ratios))
        worst = max(worst, ratio)
        e_med = float(np.median([rd["edgekit"]["median"] for rd in rounds]))
        w_med = float(np.median([rd["raw"]["median"] for rd in rounds]))
        report["formats"][r.format] = {"ratio_of_medians": ratio, "edgekit_median_ms": e_med, "raw_median_ms": w_med,
                                       "rounds": rounds}
        print(f"{r.format:10} {e_med:11.4f} {w_med:9.4f} {ratio:7.3f}   "
              + " ".join(f"{v:.3f}" for v in ratios), flush=True)
        runner.close()
    report["goal"] = "ratio <= 1.03 on every format"
    report["worst_ratio"] = worst
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"worst ratio {worst:.3f} (goal <= 1.03); wrote {args.json}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
