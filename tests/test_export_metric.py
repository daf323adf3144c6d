"""The task metric in the fp16/int8 export gate (`metric=` / `--metric`): the drop judged by what the deployment
measures (top-1 agreement of class-score rows, IoU of a thresholded map) instead of the whole output's cosine;
recorded in the manifest with its value and drop; bad values refused before anything is written."""
from __future__ import annotations

import pytest

import edgekit
from edgekit.errors import EdgekitError
from edgekit.fixtures import OCR_MODELS, write_text_images
from edgekit.harness import compare
from tests.models import conv_net, save


def test_bad_metrics_are_clear_and_write_nothing(tmp_path):
    model = save(conv_net(), tmp_path / "conv.onnx")
    out = tmp_path / "out"
    common = dict(target="mnn", out=out, input_shapes=["x:1x3x16x16"])
    with pytest.raises(EdgekitError, match=r"--metric iou.*unknown metric; use one of cosine, top1, ctc, mask@T"):
        edgekit.export(model, precision="fp16", metric="iou", **common)
    with pytest.raises(EdgekitError, match=r"output 'feat' \[1, 4, 16, 16\] is not class scores"):
        edgekit.export(model, precision="fp16", metric="top1", **common)
    with pytest.raises(EdgekitError, match=r"the model has no output 'scores'; its outputs: feat"):
        edgekit.export(model, precision="fp16", metric=["scores=top1"], **common)
    with pytest.raises(EdgekitError, match=r"output 'feat' \[1, 4, 16, 16\] is not a CTC recogniser's"):
        edgekit.export(model, precision="fp16", metric="ctc", **common)
    with pytest.raises(EdgekitError, match=r"ctc@B takes the blank class index B"):
        edgekit.export(model, precision="fp16", metric="ctc@last", **common)
    with pytest.raises(EdgekitError, match=r"mask@T takes a number T"):
        edgekit.export(model, precision="fp16", metric="mask@high", **common)
    with pytest.raises(EdgekitError, match=r"judges the fp16/int8 drop; fp32 is verified with the fp32 tolerance"):
        edgekit.export(model, precision="fp32", metric="mask@0.5", **common)
    assert not out.exists()


def test_pooled_task_metrics_on_real_outputs():
    """top1 and mask@T pool every sample's rows/pixels, as a test set's accuracy does; an output compared with
    itself scores 1, one with a flipped argmax row or a pixel over the threshold scores the exact share."""
    import numpy as np
    import onnx

    from edgekit.runner import reference

    fx = OCR_MODELS["ppocr-cls"]
    runner = reference(onnx.load(str(fx.path)))
    rng = np.random.default_rng(0)
    refs = [runner({"x": rng.uniform(-1, 1, (1, 3, 48, 192)).astype(np.float32)}) for _ in range(4)]
    runner.close()
    name = next(iter(refs[0]))
    assert compare.task_metric("top1", [r[name] for r in refs], [r[name] for r in refs]) == 1.0
    flipped = [r[name].copy() for r in refs]
    flipped[1] = flipped[1][:, ::-1].copy()  # one sample of four: its class swapped
    assert compare.task_metric("top1", [r[name] for r in refs], flipped) == 0.75
    a, b = np.zeros((2, 10)), np.zeros((2, 10))
    a[0, :4], b[0, :3], b[1, 9] = 1, 1, 1  # 3 pixels shared, 5 in the union
    assert compare.task_metric("mask@0.5", [a], [b]) == pytest.approx(3 / 5)
    assert compare.task_metric("mask@0.5", [np.zeros(3)], [np.zeros(3)]) == 1.0


def test_box_agreement_judges_the_rows_that_fire():
    """boxes@SCORES>T: the mean IoU of the centre-size boxes of the rows whose reference score is above T, pooled
    over samples; rows that never fire do not count, however far they move; the anchor offset and the pixel scale
    of the coding cancel (the same boxes shifted and scaled score the same)."""
    import numpy as np

    ref = {"boxes": np.array([[[10, 10, 4, 4, 1, 1], [50, 50, 8, 8, 2, 2], [0, 0, 2, 2, 0, 0]]], float),
           "scores": np.array([[[2.0], [-1.0], [0.5]]])}
    out = {"boxes": ref["boxes"].copy(), "scores": ref["scores"]}
    out["boxes"][0, 0, :2] += (1, 0)  # a firing row's box moved by 1/4 of its width: IoU 3/5
    out["boxes"][0, 1, :4] = (0, 0, 1, 1)  # a row below T: not judged
    assert compare.box_agreement("boxes@scores>0", "boxes", [ref], [out]) == pytest.approx((3 / 5 + 1) / 2)
    assert compare.box_agreement("boxes@scores>1", "boxes", [ref], [out]) == pytest.approx(3 / 5)
    assert compare.box_agreement("boxes@scores>5", "boxes", [ref], [out]) == 1.0  # nothing fires
    moved, shifted = ({**x, "boxes": x["boxes"].copy()} for x in (out, ref))
    for x in (moved, shifted):  # another anchor offset and pixel scale, the same for both runs
        x["boxes"][..., :4] = x["boxes"][..., :4] * 3 + (7, -2, 0, 0)
    assert compare.box_agreement("boxes@scores>0", "boxes", [shifted], [moved]) == pytest.approx((3 / 5 + 1) / 2)
    shapes = {"boxes": [1, 3, 6], "scores": [1, 3, 1], "other": [1, 4, 1]}
    assert compare.parse_metric(["boxes=boxes@scores>0.5"], shapes) == {"boxes": "boxes@scores>0.5"}
    for spec, message in ((["boxes@scores>0"], "give it as BOXES=boxes@SCORES>T"),
                          (["boxes=boxes@nope>0"], "give it as BOXES=boxes@SCORES>T"),
                          (["boxes=boxes@scores>x"], "give it as BOXES=boxes@SCORES>T"),
                          (["boxes=boxes@other"], "row for row with the scores 'other'"),
                          (["scores=boxes@boxes"], "must be boxes")):
        with pytest.raises(EdgekitError, match=message):
            compare.parse_metric(spec, shapes)


def _steps(ids: list[int], classes: int = 6, margin: float = 1.0):
    """[1, T, C] CTC scores whose argmax per step is `ids`, by `margin` over the rest."""
    import numpy as np

    x = np.zeros((1, len(ids), classes), np.float32)
    x[0, np.arange(len(ids)), ids] = margin
    return x


def test_ctc_greedy_decoding_and_the_ctc_metric():
    """ctc judges the text a CTC recogniser reads: repeats merged, blanks dropped, edit distance to the reference's
    decoding pooled over samples. A flip between a character's two steps, or a blank step becoming the same
    character, reads alike (per-step top1 would count them); a lost or changed character counts."""
    assert compare.ctc_greedy(_steps([0, 3, 3, 0, 3, 5, 5, 0])[0]) == [3, 3, 5]
    assert compare.ctc_greedy(_steps([2, 2, 4, 2])[0], blank=2) == [4]
    ref = [_steps([0, 3, 3, 0, 5, 0]), _steps([1, 0, 2, 2, 0, 4])]
    alike = [_steps([0, 3, 0, 0, 5, 5]), _steps([1, 1, 2, 0, 0, 4])]  # 4 of 12 steps differ, same text
    assert compare.task_metric("top1", ref, alike) == pytest.approx(8 / 12)
    assert compare.task_metric("ctc", ref, alike) == 1.0
    worse = [_steps([0, 3, 3, 0, 0, 0]), _steps([1, 0, 2, 2, 0, 1])]  # 5 lost; 4 read as 1: 2 edits of 5 chars
    assert compare.task_metric("ctc", ref, worse) == pytest.approx(1 - 2 / 5)
    assert compare.task_metric("ctc@5", ref, ref) == 1.0
    assert compare.task_metric("ctc", [_steps([0, 0])], [_steps([0, 0])]) == 1.0  # nothing to read, nothing read
    assert compare.task_metric("ctc", [_steps([0, 0])], [_steps([0, 3])]) == 0.0


def test_int8_gate_judged_by_top1_is_recorded(tmp_path):
    """PP-OCR cls at int8 on ONNX Runtime's QDQ, gated by top-1 agreement: the manifest names the metric, its
    value and the drop for the output; cosine and max abs error are still measured."""
    fx = OCR_MODELS["ppocr-cls"]
    write_text_images(tmp_path / "calib", "text-line", 8)
    write_text_images(tmp_path / "val", "text-line", 3)
    (r,) = edgekit.export(fx.path, target="onnx", out=tmp_path / "out", input_shapes=[fx.input_shape],
                          precision="int8", calib=[str(tmp_path / "calib")], data=[str(tmp_path / "val")],
                          samples=3, preprocessing=fx.preprocessing, max_drop=0.01, metric="top1")
    assert r.manifest is not None, r.error
    (o,) = r.manifest.verification.outputs
    assert o.metric == "top1" and o.metric_value is not None and o.drop == pytest.approx(1 - o.metric_value)
    assert o.passed == (o.metric_value >= 0.99) and r.ok == o.passed
    assert 0 < o.cosine <= 1 and o.max_abs >= 0
    assert r.manifest.export_options["metric"] == {"*": "top1"}
    assert r.manifest.verification.tolerances["metric_min"] == pytest.approx(0.99)
