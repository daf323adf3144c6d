"""strided-slice: YOLOv5's Focus layer and other step-2+ Slices, which pnnx leaves as `Tensor.slice`."""
import numpy as np
import onnx
import pytest

from edgekit.onnx.passes import strided_slice
from tests import families
from tests.onnx.passes._helpers import export_one, ort_run


@pytest.mark.parametrize("chained", [False, True])  # one Slice on axes [2,3] per piece, or two chained Slices
def test_focus_becomes_one_pixel_unshuffle_with_the_same_numbers(chained):
    x = families.focus_inputs()
    out, changed = strided_slice.run(families.focus_detector(chained=chained))
    assert changed
    ops = [n.op_type for n in out.graph.node]
    assert "Slice" not in ops and "Concat" not in ops
    assert ops[:3] == ["Reshape", "Transpose", "Reshape"]  # the channel order is folded into the first Conv
    onnx.checker.check_model(out, full_check=True)
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(families.focus_detector(chained=chained), x)[0],
                               rtol=1e-6, atol=1e-6)  # the same sums in another order
    assert not strided_slice.run(out)[1]


def test_focus_feeding_a_non_conv_gets_a_permutation_conv():
    """When the Focus output is also a graph output, the channel order cannot go into the next Conv's weights."""
    model = families.focus_detector()
    model.graph.output.append(onnx.helper.make_tensor_value_info("focus", onnx.TensorProto.FLOAT, [1, 12, 16, 16]))
    x = families.focus_inputs(seed=1)
    ref = ort_run(families.focus_detector(), x)
    out, changed = strided_slice.run(model)
    assert changed and "Slice" not in [n.op_type for n in out.graph.node]
    got = ort_run(out, x)
    np.testing.assert_array_equal(got[1], ort_run(model_with_focus_output(), x)[1])  # a pure permutation: exact
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6, atol=1e-6)


def model_with_focus_output():
    m = families.focus_detector()
    m.graph.output.append(onnx.helper.make_tensor_value_info("focus", onnx.TensorProto.FLOAT, [1, 12, 16, 16]))
    return m


def test_general_strided_slice_is_exact():
    x = families.strided_subsample_inputs()
    out, changed = strided_slice.run(families.strided_subsample())
    assert changed
    onnx.checker.check_model(out, full_check=True)
    for node in out.graph.node:  # every Slice left has step 1
        if node.op_type == "Slice" and len(node.input) > 4:
            steps = [i for i in out.graph.initializer if i.name == node.input[4]]
            assert not steps or (onnx.numpy_helper.to_array(steps[0]) == 1).all()
    np.testing.assert_array_equal(ort_run(out, x)[0], ort_run(families.strided_subsample(), x)[0])


@pytest.mark.parametrize("build,inputs", [(families.focus_detector, families.focus_inputs),
                                          (families.strided_subsample, families.strided_subsample_inputs)])
def test_pnnx_leaves_tensor_slice_and_the_pass_makes_ncnn_run_it(tmp_path, build, inputs):
    raw = export_one(build(), "ncnn", tmp_path, passes=[])
    assert not raw.ok and "Tensor.slice" in raw.error, raw.error
    fixed = export_one(build(), "ncnn", tmp_path, passes=["strided-slice"])
    assert fixed.ok, fixed.error
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.9999
