"""The OCR app on every backend: character accuracy on the rendered text >= 95% and within 1 point of the
same app on ONNX Runtime. Whitespace is not scored: PP-OCRv4's recogniser (with rapidocr's own pipeline too)
mostly omits the spaces between words of Latin text."""
from __future__ import annotations

import json

import pytest

from edgekit.harness import task_metrics
from tests.pipeline.conftest import OCR_BACKENDS, OCR_FRAMES

# PP-OCRv6 (apps/ocr/v6.yaml) on the backends that export it correctly: MNN's det at 480x640 misses the export
# gate (max abs error 0.023 on the probability map, cosine 0.999995), so its export refuses it.
OCR_V6_BACKENDS = [b for b in OCR_BACKENDS if b != "mnn"]


def char_accuracy(records: list[dict], truth: list[str]) -> float:
    """Every frame's text against the whole page's."""
    return task_metrics.char_accuracy([r["text"] for r in records], ["".join(truth)] * len(records))


def accuracy(run, samples) -> float:
    truth = json.loads(samples["ocr_truth"].read_text())["lines"]
    return char_accuracy(run.records, truth)


def test_reference_reads_the_text(app_run, samples):
    ref = app_run("ocr", "onnx")
    assert ref.error is None, ref.error
    assert len(ref.records) == OCR_FRAMES
    truth = json.loads(samples["ocr_truth"].read_text())["lines"]
    for r in ref.records:
        assert len(r["lines"]) == len(truth), r["text"]
        for line in r["lines"]:
            assert len(line["box"]) == 4 and line["score"] > 0.5
    acc = accuracy(ref, samples)
    print(f"ocr onnx: character accuracy {acc:.2f}%")
    assert acc >= 95.0


@pytest.mark.parametrize("backend", [b for b in OCR_BACKENDS if b != "onnx"])
def test_backend_matches_onnxruntime(app_run, samples, backend):
    ref, run = app_run("ocr", "onnx"), app_run("ocr", backend)
    assert run.error is None, run.error
    assert len(run.records) == OCR_FRAMES
    acc, ref_acc = accuracy(run, samples), accuracy(ref, samples)
    print(f"ocr {backend}: character accuracy {acc:.2f}% (ONNX Runtime {ref_acc:.2f}%)")
    assert acc >= 95.0
    assert abs(acc - ref_acc) <= 1.0


def test_v6_reference_reads_the_text(graph_run, samples):
    ref = graph_run("ocr", "v6.yaml", "ocr", "onnx")
    assert ref.error is None, ref.error
    assert len(ref.records) == OCR_FRAMES
    truth = json.loads(samples["ocr_truth"].read_text())["lines"]
    for r in ref.records:
        assert len(r["lines"]) == len(truth), r["text"]
    acc = accuracy(ref, samples)
    print(f"ocr v6 onnx: character accuracy {acc:.2f}%")
    assert acc >= 95.0


@pytest.mark.parametrize("backend", [b for b in OCR_V6_BACKENDS if b != "onnx"])
def test_v6_backend_matches_onnxruntime(graph_run, samples, backend):
    ref, run = graph_run("ocr", "v6.yaml", "ocr", "onnx"), graph_run("ocr", "v6.yaml", "ocr", backend)
    assert run.error is None, run.error
    assert len(run.records) == OCR_FRAMES
    acc, ref_acc = accuracy(run, samples), accuracy(ref, samples)
    print(f"ocr v6 {backend}: character accuracy {acc:.2f}% (ONNX Runtime {ref_acc:.2f}%)")
    assert acc >= 95.0
    assert abs(acc - ref_acc) <= 1.0


def test_accuracy_table_v4_and_v6(app_run, graph_run, samples):
    """The table the issue asks for, from the runs above (printed with -s): every cell >= 95%."""
    rows = []
    for backend in OCR_BACKENDS:
        v4 = app_run("ocr", backend)
        v6 = graph_run("ocr", "v6.yaml", "ocr", backend) if backend in OCR_V6_BACKENDS else None
        cells = [f"{accuracy(r, samples):.2f}%" if r and not r.error else "not exported" for r in (v4, v6)]
        rows.append(f"| {backend} | {cells[0]} | {cells[1]} |")
        for r in (v4, v6):
            assert r is None or (r.error is None and accuracy(r, samples) >= 95.0), backend
    print("\n| backend | PP-OCRv4 | PP-OCRv6 |\n|---|---|---|\n" + "\n".join(rows))


def test_a_model_the_backend_cannot_take_stops_the_graph_at_start(tmp_path, no_new_threads):
    """The recogniser without its input_shape on TFLite (whose converter needs static shapes), with an empty
    cache: the graph refuses to start, naming the node, the backend, and the graph key that fixes it; no thread
    is left."""
    from edgekit.errors import EdgekitError
    from edgekit.pipeline import Pipeline
    from edgekit.pipeline.nodes.inference import Inference
    from tests.pipeline import helpers as h

    p = Pipeline()
    p.add(h.Frames("source", count=1), outputs={"frame": "frames"})
    p.add(Inference("recognizer", model="pkg://rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                    backend="tflite", cache=str(tmp_path)), inputs={"in": "frames"}, outputs={"out": "out"})
    p.add(h.Collect("sink"), inputs={"in": "out"})
    with pytest.raises(EdgekitError) as e:
        p.start()
    assert str(e.value).startswith("node 'recognizer' (inference): tflite needs a static shape for "
                                   "ch_PP-OCRv4_rec_infer.onnx: input 'x' is 1x3x?x")
    assert 'give the inference node input_shape: "x:1x3xNxN"' in str(e.value)
    assert not p.threads()
