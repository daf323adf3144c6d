"""The acceptance matrix of the core: the three PP-OCR models (from rapidocr-onnxruntime) on every format,
verified on rendered text images. Each model is converted once per session (tests/conftest.py)."""
import numpy as np
import pytest

import edgekit
from edgekit.fixtures import OCR_MODELS
from tests.conftest import FORMATS

# Cells that must convert and verify. A cell outside this set may fail, but only loudly (see below).
MUST_PASS = {(m, f) for m in OCR_MODELS for f in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", sorted(OCR_MODELS))
def test_ocr_model_exports_and_verifies(ocr_exports, model, fmt):
    r = ocr_exports(model)[fmt]
    if (model, fmt) in MUST_PASS:
        assert r.ok, f"{model} -> {fmt}: {r.error}\n{r.log_tail}"
    if r.ok:
        v = r.manifest.verification
        assert v.passed and v.precision == "fp32" and v.samples >= 2
        assert "text-" in v.inputs  # rendered text images, not noise
        for o in v.outputs:
            assert o.cosine >= 0.999, o
        assert (r.path / "edgekit.json").is_file()
    else:  # never a silent wrong artifact: a precise message and nothing on disk
        assert r.error.startswith(f"{fmt}:") and r.path is None
        assert any(k in r.error for k in ("node", "layer", "cosine", "op")), r.error


@pytest.mark.parametrize("model", sorted(OCR_MODELS))
def test_runners_agree_with_onnxruntime_on_a_fresh_image(ocr_exports, model):
    """Beyond the export's own check: a new image through each loaded artifact matches the reference."""
    from edgekit.fixtures import render_text_line, render_text_page
    from edgekit.harness.compare import metrics
    from edgekit.preprocess import prepare

    fx = OCR_MODELS[model]
    results = [r for r in ocr_exports(model).values() if r.ok]
    assert results
    img = render_text_page(seed=7) if fx.kind == "text-page" else render_text_line("Checked on 4 backends")
    runner0 = edgekit.load(results[0].path)
    x = prepare(img, runner0.inputs[0], fx.preprocessing, color="rgb")[0]
    ref = edgekit.load(fx.path)({"x": x})
    for r in results:
        out = edgekit.load(r.path, threads=2)({"x": x})
        for name, arr in ref.items():
            assert out[name].shape == arr.shape
            assert metrics(arr, out[name]).cosine >= 0.999, (r.format, name)
    if model == "ppocr-cls":  # a class output: the decision agrees too
        assert np.argmax(out[name]) == np.argmax(arr)


def test_precision_really_used_is_recorded(ocr_exports):
    for r in ocr_exports("ppocr-cls").values():
        if r.ok:
            p = r.manifest.precision
            assert (p.requested, p.weights, p.compute) == ("fp32", "fp32", "fp32"), r.format


def _rec_48x480_with_unsqueeze_at_batch_axis(path):
    """PP-OCRv4 rec at 48x480 with its Reshape [1,60,120] -> [1,1,60,120] written as an Unsqueeze at axis 0 (what
    unit-axis-reshape wrote before it kept a leading 1 in place): pnnx makes it an ncnn ExpandDims that segfaults
    ncnn's Extractor.extract (ncnn 1.0.20261020 on x86)."""
    import onnx
    from onnx import numpy_helper

    from edgekit.onnx import passes
    from edgekit.onnx.graph_edit import static_shapes
    from edgekit.onnx.passes import unit_axis_reshape

    model = onnx.load(OCR_MODELS["ppocr-rec"].path)
    for d, v in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, 48, 480)):
        d.ClearField("dim_param")
        d.dim_value = v
    model, _ = passes.apply(model, ["simplify", "unit-axis-reshape"])
    shapes = static_shapes(model)
    unsqueezed = 0
    for node in model.graph.node:
        if node.op_type == "Unsqueeze":
            axes = unit_axis_reshape.unit_axes(shapes[node.output[0]], shapes[node.input[0]])
            assert axes == [0]
            if len(node.input) > 1:
                inits = {i.name: i for i in model.graph.initializer}
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.array(axes, np.int64), node.input[1]))
            else:
                (attr,) = [a for a in node.attribute if a.name == "axes"]
                attr.CopyFrom(onnx.helper.make_attribute("axes", axes))
            unsqueezed += 1
    assert unsqueezed == 1
    onnx.save(model, str(path))
    return path


def test_a_model_that_crashes_the_ncnn_runtime_is_a_refused_rung(tmp_path):
    """The crash is found in a child process: the rung is refused with a message that says so, nothing is written,
    and this process lives on. (Where this build of ncnn does not crash, the rung verifies as usual.)"""
    fx = OCR_MODELS["ppocr-rec"]
    src = _rec_48x480_with_unsqueeze_at_batch_axis(tmp_path / "rec_unsqueeze0.onnx")
    (r,) = edgekit.export(src, target="ncnn", out=tmp_path / "out", preprocessing=fx.preprocessing,
                          recipe="default")
    if not r.ok:
        assert r.error.startswith("ncnn: the ncnn runtime crashes (SIGSEGV) running the model pnnx wrote"), r.error
        assert r.path is None and not any((tmp_path / "out").glob("*/*.param"))
    else:
        assert r.manifest.verification.passed


def test_rec_at_48x480_converts_with_the_rewrites_rung(tmp_path):
    """The same Reshape through unit-axis-reshape (the Unsqueeze after the leading batch 1) converts and verifies."""
    fx = OCR_MODELS["ppocr-rec"]
    (r,) = edgekit.export(fx.path, target="ncnn", out=tmp_path / "out", input_shapes=["x:1x3x48x480"],
                          preprocessing=fx.preprocessing, recipe="rewrites")
    assert r.ok, r.error
    assert "unit-axis-reshape" in r.manifest.passes and r.manifest.verification.passed
