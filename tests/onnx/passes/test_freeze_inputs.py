"""freeze-inputs: a 0-d int64 sample-rate input with an `If` on it (silero-VAD-like), which pnnx cannot take
(scalar input) and MNN cannot size (the If's output), frozen to its deployed value."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import freeze_inputs
from tests import families
from tests.onnx.passes._helpers import ort_run


def _ops(graph):
    return [n.op_type for n in graph.node]


@pytest.mark.parametrize("sr", [16000, 8000])  # 8000 also inlines the If nested in the else branch
def test_frozen_model_is_bit_identical_at_that_sample_rate(sr):
    x = families.streaming_vad_inputs(sr=sr)
    ref = ort_run(families.streaming_vad(), x)
    out, changed = freeze_inputs.run(families.streaming_vad(), {"sr": sr})
    assert changed
    assert [i.name for i in out.graph.input] == ["audio", "state"]
    assert "If" not in _ops(out.graph) and "Equal" not in _ops(out.graph)
    onnx.checker.check_model(out, full_check=True)
    got = ort_run(out, {k: v for k, v in x.items() if k != "sr"})
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_branch_returning_its_own_initializer_and_a_bool_flag_input():
    """then-branch returns one of its initializers directly (lifted, then an Identity to the If's output);
    else-branch computes from an outer-scope name; the flag is a 1-element bool input, not a computed one."""
    then_g = helper.make_graph([], "t", [], [helper.make_tensor_value_info("t_const", TensorProto.FLOAT, [2])],
                               [numpy_helper.from_array(np.array([3.0, 4.0], np.float32), "t_const")])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["y2"], name="neg")], "e", [],
                               [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2])])
    nodes = [helper.make_node("If", ["flag"], ["b"], name="choose", then_branch=then_g, else_branch=else_g),
             helper.make_node("Add", ["b", "one"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                                           helper.make_tensor_value_info("flag", TensorProto.BOOL, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [numpy_helper.from_array(np.ones(2, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = np.array([1.5, -2.0], np.float32)
    for flag in (True, False):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        out, _ = freeze_inputs.run(m, {"flag": [flag]})
        onnx.checker.check_model(out, full_check=True)
        assert "If" not in _ops(out.graph)
        np.testing.assert_array_equal(ort_run(out, {"x": x})[0], ort_run(model, {"x": x, "flag": np.array([flag])})[0])


def test_without_values_nothing_changes_and_unknown_names_are_refused():
    model = families.streaming_vad()
    before = model.SerializeToString()
    assert freeze_inputs.run(model)[1] is False and model.SerializeToString() == before
    with pytest.raises(ValueError, match="no input named rate"):
        freeze_inputs.run(model, {"rate": 16000})


def test_mnn_cannot_size_the_if_and_pnnx_refuses_the_scalar_and_freezing_fixes_mnn(tmp_path):
    """Through the export flow with one recipe each (raw, then the frozen model with rnn-unroll)."""
    from benchmarks.op_families import export_row

    feeds = [families.streaming_vad_inputs(seed) for seed in range(2)]
    for fmt, needle in (("mnn", "0x0x0x0"), ("ncnn", "--const sr=VALUE")):
        (tmp_path / fmt).mkdir()
        raw = export_row(families.streaming_vad(), feeds, fmt, [], tmp_path / fmt)
        assert raw["status"] == "failed" and needle in raw["error"], raw
    frozen = freeze_inputs.run(families.streaming_vad(), {"sr": 16000})[0]
    (tmp_path / "fixed").mkdir()
    fixed = export_row(frozen, feeds, "mnn", ["rnn-unroll"], tmp_path / "fixed")
    assert fixed["status"] == "ok" and fixed["cosine"] >= 0.9999, fixed
