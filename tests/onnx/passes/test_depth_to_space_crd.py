"""depth-to-space-crd: a DCR DepthToSpace (TensorFlow's depth_to_space, as in the sparse full-range BlazeFace)
stays untranslated by pnnx; CRD with reordered channels is the same function and converts."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.passes import depth_to_space_crd
from tests.onnx.passes._helpers import export_one, ort_run


def upsample_head(group: int = 1, mode: str | None = None) -> onnx.ModelProto:
    """x[1,16,6,6] -> Conv (ungrouped 16->16, or depthwise with group=16) -> DepthToSpace(b=2) -> [1,4,12,12]."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (16, 16 // group, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b")]
    d2s = helper.make_node("DepthToSpace", ["c"], ["y"], name="d2s", blocksize=2)
    if mode:
        d2s.attribute.append(helper.make_attribute("mode", mode))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], group=group), d2s]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 12, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("group,new_nodes", [(1, 0), (16, 1)])  # folded into the conv / a 1x1 permutation conv
def test_rewrite_is_exact(group, new_nodes):
    x = {"x": np.random.default_rng(1).normal(0, 1, (1, 16, 6, 6)).astype(np.float32)}
    out, changed = depth_to_space_crd.run(upsample_head(group))
    assert changed
    (d2s,) = [n for n in out.graph.node if n.op_type == "DepthToSpace"]
    assert helper.get_attribute_value(next(a for a in d2s.attribute if a.name == "mode")) == b"CRD"
    assert len(out.graph.node) == 2 + new_nodes
    onnx.checker.check_model(out)
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(upsample_head(group), x)[0], rtol=1e-6, atol=1e-6)
    assert not depth_to_space_crd.run(out)[1]
    assert not depth_to_space_crd.run(upsample_head(group, mode="CRD"))[1]


def test_pnnx_leaves_dcr_and_the_pass_makes_ncnn_load_it(tmp_path):
    raw = export_one(upsample_head(16), "ncnn", tmp_path, passes=[])
    assert not raw.ok and "DepthToSpace" in raw.error and "cannot run" in raw.error, raw.error
    fixed = export_one(upsample_head(16), "ncnn", tmp_path, passes=["depth-to-space-crd"])
    assert fixed.ok, fixed.error
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.9999
