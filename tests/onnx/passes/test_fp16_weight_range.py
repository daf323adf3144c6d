"""fp16-weight-range: BatchNorm-folded weights below fp16's smallest normal, as in PP-OCRv4 det's head, which
pnnx's fp16 weight writer flushes to zero."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import fp16_weight_range
from tests.onnx.passes._helpers import ort_run


def head_net() -> onnx.ModelProto:
    """x -> *1000 (large activations) -> Conv -> BatchNorm(var 1e8) -> Relu -> Conv: folded first weights ~1e-5."""
    rng = np.random.default_rng(0)
    f = np.float32
    inits = [numpy_helper.from_array(np.array(1000, f), "gain"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(f), "w1"),
             numpy_helper.from_array(rng.uniform(0.8, 1.2, 8).astype(f), "gamma"),
             numpy_helper.from_array(rng.normal(0, 0.001, 8).astype(f), "beta"),
             numpy_helper.from_array(rng.normal(0, 1, 8).astype(f), "mean"),
             numpy_helper.from_array(rng.uniform(0.5e8, 1e8, 8).astype(f), "var"),
             numpy_helper.from_array(rng.normal(0, 0.5, (4, 8, 1, 1)).astype(f), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.001, 4).astype(f), "b2")]
    nodes = [helper.make_node("Mul", ["x", "gain"], ["big"], name="gain"),
             helper.make_node("Conv", ["big", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2")]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _folded_w1(model):
    w = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return w["w1"] * (w["gamma"] / np.sqrt(w["var"] + 1e-5))[:, None, None, None], w["w2"]


def _lost(w):
    """Share of the weights' L1 mass that a flush-to-zero fp16 cast would drop."""
    a = np.abs(w)
    return a[a < 2 ** -14].sum() / a.sum()


def test_rescaling_is_exact_and_brings_the_weights_into_fp16_range():
    x = {"x": np.random.default_rng(1).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)}
    before = head_net()
    w1, _ = _folded_w1(before)
    assert _lost(w1) > 0.9  # the problem: nearly all flush to zero in pnnx's fp16 cast
    after, changed = fp16_weight_range.run(head_net())
    assert changed
    w1, w2 = _folded_w1(after)
    assert _lost(w1) < 0.01 and _lost(w2) < 0.01
    np.testing.assert_array_equal(ort_run(after, x)[0], ort_run(before, x)[0])  # powers of two: bit-exact
    _, again = fp16_weight_range.run(after)
    assert not again


def test_ncnn_fp16_is_wrong_without_the_pass_and_right_with_it(tmp_path):
    from edgekit import export

    path = tmp_path / "head.onnx"
    onnx.save(head_net(), str(path))
    (raw,) = export(path, target="ncnn", out=tmp_path / "raw", precision="fp16", passes=[])
    assert not raw.ok and raw.manifest.verification.outputs[0].cosine < 0.9, raw.error
    (fixed,) = export(path, target="ncnn", out=tmp_path / "fixed", precision="fp16", passes=["fp16-weight-range"])
    assert fixed.ok, fixed.error
    assert fixed.manifest.passes == ["fp16-weight-range"]


def test_ppocr_det_on_ncnn_with_fp16_weights(tmp_path):
    """The real case: PP-OCRv4 det with pnnx's fp16 weights gives cosine ~0.15 without the pass (the head Conv's
    folded weights flush to zero), ~0.99998 with it. keep_inaccurate: compare both, pass or not."""
    from edgekit import export
    from edgekit.fixtures import OCR_MODELS, write_text_images

    fx = OCR_MODELS["ppocr-det"]
    data = write_text_images(tmp_path / "img", fx.kind, 1)
    cos = {}
    for name, passes in (("without", ["simplify"]), ("with", ["simplify", "fp16-weight-range"])):
        (r,) = export(fx.path, target="ncnn", out=tmp_path / name, input_shapes=[fx.input_shape], data=data,
                      preprocessing=fx.preprocessing, precision="fp16", passes=passes, keep_inaccurate=True)
        assert r.manifest is not None, r.error
        cos[name] = r.manifest.verification.outputs[0].cosine
    assert cos["without"] < 0.5 and cos["with"] >= 0.999, cos
