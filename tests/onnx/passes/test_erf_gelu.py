"""erf-gelu: onnx2tf lowers Erf to FlexErf, which LiteRT cannot run; GELUs become the form TensorFlow fuses into
its builtin GELU, any other Erf a rational approximation in builtin ops."""
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgekit.onnx.passes import erf_gelu
from tests import families
from tests.onnx.passes._helpers import export_one, ort_run


def erf_only() -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="erf")], "erf",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_rational_erf_is_within_fp32_rounding_of_erf():
    x = np.concatenate([np.linspace(-6, 6, 240001), np.geomspace(1e-30, 1, 2001), -np.geomspace(1e-30, 1, 2001)])
    x = x.astype(np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    out, changed = erf_gelu.run(erf_only())
    assert changed and "Erf" not in [n.op_type for n in out.graph.node]
    got = ort_run(out, {"x": x})[0].astype(np.float64)
    err = np.abs(got - ref)
    assert err.max() < 5e-7  # measured 4.2e-7 (A&S 7.1.26 in fp32: 5.3e-7)
    nz = ref != 0
    assert (err[nz] / np.abs(ref[nz])).max() < 5e-7  # relative too, down to tiny x (A&S: 1e-5 near 0)


@pytest.mark.parametrize("form", ["torch", "mul"])
def test_gelu_forms_become_the_fusable_form_with_the_same_numbers(form):
    x = families.gelu_mlp_inputs()
    out, changed = erf_gelu.run(families.gelu_mlp(form=form))
    assert changed
    ops = [n.op_type for n in out.graph.node]
    assert ops.count("Erf") == 1 and "Div" not in ops
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(families.gelu_mlp(form=form), x)[0],
                               rtol=1e-6, atol=1e-6)


def test_cdf_head_erf_becomes_rational():
    x = families.gaussian_cdf_inputs()
    out, changed = erf_gelu.run(families.gaussian_cdf_head())
    assert changed and "Erf" not in [n.op_type for n in out.graph.node]
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(families.gaussian_cdf_head(), x)[0], atol=1e-6)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("build", [lambda: families.gelu_mlp(form="torch"), families.gaussian_cdf_head])
def test_litert_refuses_flex_erf_and_runs_the_rewrite(tmp_path, build):
    raw = export_one(build(), "tflite", tmp_path, passes=[])
    assert not raw.ok and "TensorFlow Select ops that LiteRT cannot run: FlexErf" in raw.error, raw.error
    fixed = export_one(build(), "tflite", tmp_path, passes=["erf-gelu"])
    assert fixed.ok, fixed.error
    assert min(o.cosine for o in fixed.manifest.verification.outputs) >= 0.99999
