"""pad-mode: tf2onnx's Pad without a `mode` attribute (MediaPipe's channel padding) stays untranslated by pnnx."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import pad_mode
from tests.onnx.passes._helpers import export_one, ort_run


def channel_pad_net(mode: str | None = None) -> onnx.ModelProto:
    """x[1,4,8,8] -> relu -> Pad(channels 4 -> 8, no `mode` attribute) -> + conv1x1(x): BlazeFace's residual block."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 4, 0, 0], np.int64), "pads"),
             numpy_helper.from_array(rng.normal(0, 0.5, (8, 4, 1, 1)).astype(np.float32), "w")]
    pad = helper.make_node("Pad", ["r", "pads"], ["p"], name="channel_padding")
    if mode:
        pad.attribute.append(helper.make_attribute("mode", mode))
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), pad,
             helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Add", ["p", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "channel_pad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_pass_writes_the_default_mode_and_keeps_the_numbers():
    x = {"x": np.random.default_rng(1).normal(0, 1, (1, 4, 8, 8)).astype(np.float32)}
    out, changed = pad_mode.run(channel_pad_net())
    assert changed
    (pad,) = [n for n in out.graph.node if n.op_type == "Pad"]
    assert helper.get_attribute_value(pad.attribute[0]) == b"constant"
    np.testing.assert_array_equal(ort_run(out, x)[0], ort_run(channel_pad_net(), x)[0])
    _, changed = pad_mode.run(channel_pad_net(mode="reflect"))  # an explicit mode is left alone
    assert not changed


def test_pnnx_leaves_the_pad_and_the_pass_makes_ncnn_load_it(tmp_path):
    """The problem with the real converter and the fix: raw pnnx -> ncnn refuses `Pad`; with the pass it verifies."""
    raw = export_one(channel_pad_net(), "ncnn", tmp_path, passes=[])
    assert not raw.ok and "Pad" in raw.error and "cannot run" in raw.error, raw.error
    fixed = export_one(channel_pad_net(), "ncnn", tmp_path, passes=["pad-mode"])
    assert fixed.ok, fixed.error
    assert fixed.manifest.passes == ["pad-mode"]
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.9999
