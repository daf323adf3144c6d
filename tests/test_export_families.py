"""Op families through the whole export flow and its conversion ladder: helper-API models that behave like
real ones (tests/families.py), each with realistic inputs. Where the first rung fails, the ladder climbs to the
rung that serves the family; `const` freezes an input that is constant in deployment."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgekit
from edgekit.errors import EdgekitError
from tests import families
from tests.models import save


def _export(tmp_path, model, inputs: dict, target: str, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = save(model, tmp_path / "model.onnx")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):  # two samples: the given one and a perturbed copy
        sample = {k: (v if v.dtype.kind != "f" else v * (1 - 0.1 * i)) for k, v in inputs.items()}
        np.savez(data / f"s{i}.npz", **sample)  # frozen inputs included, as a user's recorded data would be
    return {r.format: r for r in edgekit.export(path, target=target, out=tmp_path / "out", data=[str(data)], **kw)}


@pytest.mark.parametrize("fmt", ["ncnn", "mnn", "openvino", "tflite"])
def test_a_crnn_with_a_bidirectional_lstm_converts_on_every_format(tmp_path, fmt):
    r = _export(tmp_path, families.crnn(), families.crnn_inputs(), fmt)[fmt]
    assert r.ok, r.error
    assert min(o.cosine for o in r.manifest.verification.outputs) >= 0.999
    if fmt in ("ncnn", "mnn", "tflite"):  # their converters fail on the LSTM itself: the rewrites rung unrolls it
        assert r.recipe == "rewrites" and "rnn-unroll" in r.manifest.passes, r.attempts
        assert [a["recipe"] for a in r.attempts][-1] == "rewrites"


def test_a_scalar_int64_input_frozen_with_const_converts_everywhere(tmp_path):
    """0-d int64 input: without `const` no export crashes (each format reports), with it all four convert."""
    results = _export(tmp_path / "plain", families.scalar_gain(), families.scalar_gain_inputs(), "all")
    assert set(results) == {"ncnn", "mnn", "tflite", "openvino"}  # every format reported, none crashed export
    for r in results.values():
        assert r.ok or r.error, r.format
    frozen = _export(tmp_path / "frozen", families.scalar_gain(), families.scalar_gain_inputs(), "all",
                     const={"k": 3})
    for r in frozen.values():
        assert r.ok, r.error
        assert [s.name for s in r.manifest.inputs] == ["x"] and r.manifest.export_options["const"] == {"k": 3}


def test_a_streaming_vad_with_if_on_the_sample_rate_runs_on_mnn_and_ncnn_once_frozen(tmp_path):
    inputs = families.streaming_vad_inputs()
    r = _export(tmp_path, families.streaming_vad(), inputs, "mnn,openvino,ncnn", const=["sr=16000"])
    for fmt in ("mnn", "openvino", "ncnn"):
        assert r[fmt].ok, r[fmt].error
    assert r["mnn"].recipe == "rewrites"  # MNN also needs the LSTM unrolled
    # ncnn: unrolled, and the state's Reshape [1,1,H] -> [1,H] as a Squeeze (pnnx loses the batch axis there)
    assert r["ncnn"].recipe == "rewrites" and {"rnn-unroll", "unit-axis-reshape"} <= set(r["ncnn"].manifest.passes)
    assert {s.name for s in r["mnn"].manifest.inputs} == {"audio", "state"}
    # `check` applies the same constant to the reference
    report = edgekit.check([r["mnn"].path], data=[str(tmp_path / "data")])
    assert report.passed


def test_a_focus_layer_detector_converts_on_ncnn(tmp_path):
    r = _export(tmp_path, families.focus_detector(), families.focus_inputs(), "ncnn")["ncnn"]
    assert r.ok and r.recipe == "rewrites" and "strided-slice" in r.manifest.passes, r.attempts


def test_const_errors_are_clear(tmp_path):
    path = save(families.scalar_gain(), tmp_path / "m.onnx")
    with pytest.raises(EdgekitError, match="the model has no input 'kk'; its inputs: x, k"):
        edgekit.export(path, target="onnx", out=tmp_path / "o", const=["kk=3"])
    with pytest.raises(EdgekitError, match="not a number"):
        edgekit.export(path, target="onnx", out=tmp_path / "o", const=["k=three"])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", list(families.RANK_SHAPES))
def test_ncnn_maps_1d_2d_and_3d_tensors_exactly(tmp_path, kind):
    """pnnx keeps every axis of most 1-D/2-D blobs (batch_index 233 in its script) and drops axis 0 of others,
    of any length: the runner must follow its script, not assume axis 0 is a batch of one."""
    r = _export(tmp_path, families.rank_model(kind), families.rank_inputs(kind), "ncnn")["ncnn"]
    assert r.ok, r.error
    assert r.attempts[0]["recipe"] == r.recipe == "default"  # one conversion
    for o in r.manifest.verification.outputs:
        assert o.cosine >= 0.999 and o.max_abs < 1e-4, (o.name, o.cosine, o.max_abs)
    runner = edgekit.load(r.path)
    x = families.rank_inputs(kind, seed=5)
    want = {o.name: o for o in r.manifest.outputs}
    got = runner(x)
    for name, arr in got.items():
        assert list(arr.shape) == want[name].shape


@pytest.mark.parametrize("kind", ["ncw", "batched-seq"])
def test_tflite_maps_3d_tensors_back_from_nwc(tmp_path, kind):
    """onnx2tf makes every 3-D input NWC ([2, 5, 16] becomes [2, 16, 5] even before a MatMul) and a Conv1d's
    output NWC too, while a MatMul's output stays as it is: the mapping follows each tensor."""
    r = _export(tmp_path, families.rank_model(kind), families.rank_inputs(kind), "tflite")["tflite"]
    assert r.ok, r.error
    assert r.attempts[0]["recipe"] == r.recipe == "default"
    assert [s.layout for s in r.manifest.inputs] == ["NWC"]
    if kind == "ncw":
        assert {s.name: s.layout for s in r.manifest.outputs}["y"] == "NWC"
    for o in r.manifest.verification.outputs:
        assert o.cosine >= 0.999 and o.max_abs < 1e-4, (o.name, o.cosine, o.max_abs)


@pytest.mark.parametrize("lstm", [True, False], ids=["lstm", "pooled"])
def test_a_dynamically_quantized_encoder_is_judged_by_its_own_quantization_step(tmp_path, lstm):
    """The reference is itself quantized: a float backend (the dequantize-dynamic rewrite) or one running the
    quantized ops with its own rounding differs from it by about the activations' rounding, propagated. The
    allowance is measured on the model itself (its float rewrite on ONNX Runtime) and the manifest says so."""
    model = families.quantized_speech_encoder(lstm=lstm)
    results = _export(tmp_path, model, families.speech_encoder_inputs(), "ncnn,mnn,openvino")
    for fmt, r in results.items():
        assert r.ok, r.error
        v = r.manifest.verification
        assert "own quantization gap" in v.tolerances["basis"] and "DynamicQuantizeLinear" in v.tolerances["basis"]
        floated = "dequantize-dynamic" in r.manifest.passes
        assert (", the backend running the float rewrite" in v.tolerances["basis"]) == floated, fmt
        atol = v.tolerances["atol"]["logits"]
        assert 1e-4 < atol < 0.1 and v.tolerances["default"]["atol"] == 1e-4  # widened, from the default
        assert min(o.cosine for o in v.outputs) >= v.tolerances["cos"]["logits"] > 0.99
    assert results["ncnn"].recipe == "rewrites" and results["mnn"].recipe == "rewrites"
    # `check` judges them as export did: the same allowance, measured again on its own inputs
    report = edgekit.check([r.path for r in results.values()], data=[str(tmp_path / "data")])
    assert report.passed, report.to_dict()


def test_a_float_model_keeps_the_plain_fp32_tolerance(tmp_path):
    r = _export(tmp_path, families.float_speech_encoder(lstm=False), families.speech_encoder_inputs(), "ncnn")["ncnn"]
    assert r.ok, r.error
    assert r.manifest.verification.tolerances == {"cos": 0.999, "atol": 1e-4, "rtol": 1e-2, "top1": 0.99}


def _cli_export(tmp_path, model, inputs: dict, *args):
    """`edgekit export` in a child with its own TMPDIR: (exit code, output, the JSON report, out, scratch)."""
    path = save(model, tmp_path / "model.onnx")
    np.savez(tmp_path / "sample.npz", **inputs)
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "export", path, "--data", tmp_path / "sample.npz",
                           "--out", out, "--json", tmp_path / "r.json", *args], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(scratch)}, timeout=600)
    report = json.loads((tmp_path / "r.json").read_text()) if (tmp_path / "r.json").is_file() else None
    return proc.returncode, proc.stdout + proc.stderr, report, out, scratch


def test_a_scalar_input_on_ncnn_is_refused_with_the_const_to_give_and_nothing_left(tmp_path):
    """pnnx has no inputshape for a 0-d input: refused before pnnx runs, naming the input and the --const that
    freezes it; exit 1, no artifact, an empty temp folder."""
    code, text, report, out, scratch = _cli_export(tmp_path, families.streaming_vad(),
                                                   families.streaming_vad_inputs(), "--target", "ncnn")
    assert code == 1, text
    assert "Traceback" not in text
    (ncnn,) = report
    assert ncnn["status"] == "failed"
    assert "pnnx cannot take a 0-d (scalar) input: 'sr' (int64)" in ncnn["error"]
    assert "freeze it with --const sr=VALUE" in ncnn["error"]
    assert not out.exists() or list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_a_native_converter_crash_on_a_quantized_lstm_is_contained_and_reported(tmp_path):
    """pnnx segfaults (exit -11) on com.microsoft DynamicQuantizeLSTM: with the raw recipe forced, the crash is
    a one-line failure with exit 1, no traceback, nothing in --out or the temp folder."""
    code, text, report, out, scratch = _cli_export(tmp_path, families.quantized_speech_encoder(),
                                                   families.speech_encoder_inputs(), "--target", "ncnn",
                                                   "--recipe", "raw")
    assert code == 1, text
    assert "Traceback" not in text
    (ncnn,) = report
    assert ncnn["status"] == "failed" and "pnnx failed (exit -11)" in ncnn["error"]
    assert not out.exists() or list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []
