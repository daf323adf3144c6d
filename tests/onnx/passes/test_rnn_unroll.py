"""rnn-unroll: ONNX LSTM / GRU unrolled over static time steps; MNN's converter crashes on an LSTM and pnnx
maps one only in torch.onnx's exact surroundings."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import freeze_inputs, rnn_unroll
from tests import families
from tests.onnx.passes._helpers import export_one, ort_run


def rnn(op, direction, states, lbr=0, t=5, n=2, i=3, h=4):
    """One LSTM or GRU node with every output a graph output (Y [T,D,N,H], Y_h, and Y_c for LSTM)."""
    rng = np.random.default_rng(hash((op, direction, states, lbr)) % 2 ** 32)
    d, g = (2 if direction == "bidirectional" else 1), (4 if op == "LSTM" else 3)
    inits = [numpy_helper.from_array(rng.normal(0, .5, (d, g * h, i)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, .5, (d, g * h, h)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.normal(0, .3, (d, 2 * g * h)).astype(np.float32), "B")]
    state_names = ["h0", "c0"] if op == "LSTM" else ["h0"]
    ins = ["x", "W", "R", "B"] + (["", *state_names] if states else [])
    outs = ["Y", "Yh", "Yc"] if op == "LSTM" else ["Y", "Yh"]
    attrs = dict(hidden_size=h, direction=direction)
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, n, i])] + (
        [helper.make_tensor_value_info(s, TensorProto.FLOAT, [d, n, h]) for s in state_names] if states else [])
    graph = helper.make_graph([helper.make_node(op, ins, outs, name="rnn", **attrs)], "rnn", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, [t, d, n, h] if o == "Y" else
                                                             [d, n, h]) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    feeds = {"x": rng.normal(size=(t, n, i)).astype(np.float32)}
    if states:
        feeds.update({s: rng.normal(size=(d, n, h)).astype(np.float32) for s in state_names})
    return model, feeds


CASES = [("LSTM", dr, st, 0) for dr in ("forward", "reverse", "bidirectional") for st in (False, True)] + \
        [("GRU", dr, st, lbr) for dr in ("forward", "reverse", "bidirectional") for st in (False, True)
         for lbr in (0, 1)]


@pytest.mark.parametrize("op,direction,states,lbr", CASES)
def test_unrolled_rnn_matches_onnx_runtime(op, direction, states, lbr):
    model, feeds = rnn(op, direction, states, lbr)
    ref = ort_run(model, feeds)
    out, changed = rnn_unroll.run(rnn(op, direction, states, lbr)[0])
    assert changed and op not in [n.op_type for n in out.graph.node]
    onnx.checker.check_model(out, full_check=True)
    for a, b in zip(ref, ort_run(out, feeds)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_peepholes_are_left_alone():
    model, _ = rnn("LSTM", "forward", False)
    node = model.graph.node[0]
    model.graph.initializer.append(numpy_helper.from_array(np.ones((1, 12), np.float32), "P"))
    node.input.extend(["", "", "", "P"])
    assert not rnn_unroll.run(model)[1]


def test_family_models_match():
    vad = freeze_inputs.run(families.streaming_vad(), {"sr": 16000})[0]
    vad_x = {k: v for k, v in families.streaming_vad_inputs().items() if k != "sr"}
    for model, x in ((families.crnn(), families.crnn_inputs()), (vad, vad_x),
                     (families.float_speech_encoder(), families.speech_encoder_inputs())):
        ref = ort_run(model, x)
        c = onnx.ModelProto()
        c.CopyFrom(model)
        out, changed = rnn_unroll.run(c)
        assert changed
        for a, b in zip(ref, ort_run(out, x)):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt,raw_error", [("ncnn", "cannot load"), ("mnn", "exit -11")])
def test_crnn_fails_raw_and_converts_unrolled(tmp_path, fmt, raw_error):
    """ncnn: pnnx writes the batch-first bidirectional LSTM as a parameterless `LSTM` line ("layer load_param
    LSTM failed"); MNN: the converter segfaults lowering the LSTM to While."""
    raw = export_one(families.crnn(), fmt, tmp_path, passes=[])
    assert not raw.ok and raw_error in raw.error, raw.error
    fixed = export_one(families.crnn(), fmt, tmp_path, passes=["rnn-unroll"])
    assert fixed.ok, fixed.error
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.9999


def test_simplify_hides_torchs_lstm_pattern_from_pnnx_and_unrolling_restores_ncnn(tmp_path):
    """The issue's report: torch.onnx's bidirectional LSTM (Y -> Transpose(0,2,1,3) -> Reshape(0,0,-1)) loads in
    ncnn from raw pnnx, but onnxslim folds the size-1 transposes and the Reshape into one Reshape, pnnx no longer
    recognises nn.LSTM and ncnn refuses the parameterless LSTM line. Unrolled after simplify, it verifies."""
    model = families.crnn(form="torch")
    assert export_one(model, "ncnn", tmp_path, passes=[]).ok
    slim = export_one(families.crnn(form="torch"), "ncnn", tmp_path, passes=["simplify"])
    assert not slim.ok and "cannot load" in slim.error, slim.error
    fixed = export_one(families.crnn(form="torch"), "ncnn", tmp_path, passes=["simplify", "rnn-unroll"])
    assert fixed.ok, fixed.error
