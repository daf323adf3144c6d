"""`edgekit bench` end to end on real runtimes: the one-shot flow on a small conv net, artifacts of PP-OCR cls,
the reports (JSON, Markdown, self-contained HTML) and bad input. No timing assertions: statistics are
checked for consistency with the samples they came from, reports for being complete and well-formed."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.harness import latency

QUICK = ["--warmup", "2", "--iterations", "5", "--min-seconds", "0", "--settle-ms", "1", "-q"]
FAST_FORMATS = "onnx,ncnn,mnn,openvino"  # tflite's converter alone takes ~25 s: it is in the slow test


@pytest.fixture(scope="session")
def one_shot(conv_model, tmp_path_factory):
    """The one-shot flow on the conv net, at 1 and 2 threads, with every report written."""
    d = tmp_path_factory.mktemp("bench_one_shot")
    paths = {k: d / f"report.{k}" for k in ("json", "md", "html")}
    code = main(["bench", str(conv_model), "--target", FAST_FORMATS, "--out", str(d / "artifacts"),
                 "--input-shape", "x:1x3x16x16", "--threads", "1,2", *QUICK, "--json", str(paths["json"]),
                 "--markdown", str(paths["md"]), "--html", str(paths["html"])])
    return code, paths, d


@pytest.fixture(scope="session")
def cls_artifacts(tmp_path_factory):
    import edgekit
    from edgekit.fixtures import OCR_MODELS

    fx = OCR_MODELS["ppocr-cls"]
    out = tmp_path_factory.mktemp("bench_cls")
    results = edgekit.export(fx.path, target="ncnn,mnn,openvino", out=out, input_shapes=[fx.input_shape],
                             preprocessing=fx.preprocessing)
    assert all(r.ok for r in results), [r.error for r in results]
    return {r.format: r.path for r in results}


def _check_stats(stats: dict, samples_ms: list):
    assert stats["n"] == len(samples_ms) > 0
    ref = latency.summarize(np.asarray(samples_ms) / 1e3).to_dict()
    for key in ("min", "median", "mean", "p90", "p99", "max", "std", "cv", "throughput"):
        assert stats[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    assert stats["min"] <= stats["median"] <= stats["p90"] <= stats["p99"] <= stats["max"]
    lo, hi = stats["median_ci95"]
    assert lo <= stats["median"] <= hi


def test_one_shot_json_is_complete(one_shot):
    code, paths, _ = one_shot
    assert code == 0
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == "edgekit-bench/1" and data["one_shot"] is True
    for key in ("timed_region", "spin_wait", "threads", "memory", "statistics"):
        assert data["methodology"][key]
    assert data["environment"]["cpu"] and data["settings"]["threads"] == [1, 2]
    rows = data["results"]
    assert sorted((r["format"], r["threads"]) for r in rows) == sorted(
        (f, t) for f in FAST_FORMATS.split(",") for t in (1, 2))
    for r in rows:
        assert r["status"] in ("ok", "reference"), r
        _check_stats(r["stats"], r["samples_ms"])
        assert r["load_s"] > 0 and r["first_inference_s"] > 0 and r["size_mb"] > 0
        assert r["precision"]["weights"] == "fp32"
        assert r["peak_rss_added_mb"] is not None and r["peak_rss_added_mb"] >= 0
        assert r["ratio_to_fastest"] >= 1.0
        assert r["ratio_to_reference"] is not None
        assert r["versions"]
        if r["format"] == "onnx":
            assert r["status"] == "reference" and r["ratio_to_reference"] == pytest.approx(1.0)
        else:
            assert r["worst_cosine"] > 0.999
        if r["format"] == "ncnn":
            assert "openmp_blocktime" in r["precision"]["settings"]
    fastest = {t: min(r["stats"]["median"] for r in rows if r["threads"] == t) for t in (1, 2)}
    for r in rows:
        assert r["ratio_to_fastest"] == pytest.approx(r["stats"]["median"] / fastest[r["threads"]])
    rec = data["recommendation"]
    assert rec["format"] in FAST_FORMATS.split(",")
    assert rec["median_ms"] == pytest.approx(min(fastest.values()))
    # every block of the schedule is in the JSON, and it interleaves all four formats
    sched = data["schedules"]["1"]
    assert {name for _, name, _ in sched} == set(FAST_FORMATS.split(","))


def test_one_shot_markdown(one_shot):
    _, paths, _ = one_shot
    md = paths["md"].read_text()
    assert md.startswith("# edgekit bench:")
    assert "| format | threads | status | size MB | worst cosine | median ms | p90 ms | FPS | vs ONNX Runtime |" in md
    assert "**Recommendation:**" in md and "## Methodology" in md
    table_lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len({ln.count("|") for ln in table_lines[:10]}) == 1  # the first table's rows have equal columns
    # a saved JSON renders the same report again
    from edgekit.harness import report, results

    assert report.to_markdown(results.load_json(paths["json"])) == md


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "br", "img", "link", "input", "hr", "circle", "line", "rect", "path", "polyline"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("circle", "line", "rect", "path", "polyline"):
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def test_one_shot_html_is_self_contained_and_well_formed(one_shot):
    _, paths, _ = one_shot
    text = paths["html"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    p = _Collect()
    p.feed(text)
    assert not p.errors and p.stack == [], (p.errors, p.stack)
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from anywhere
    assert not re.search(r"url\(", text)
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) >= 3  # distribution, medians, timeline
    for svg in svgs:
        root = ET.fromstring(svg)  # each plot is well-formed XML
        assert root.tag.endswith("svg")
    assert "Latency distribution" in text and "Median latency" in text and "Accuracy verdicts" in text
    for fmt in FAST_FORMATS.split(","):
        assert f">{fmt}" in text


def test_artifacts_interleaved_with_real_inputs(cls_artifacts, tmp_path):
    """Several artifacts (no reference among them), real text-line images through the manifest preprocessing."""
    import edgekit
    from edgekit.fixtures import write_text_images

    images = write_text_images(tmp_path / "img", "text-line", 2)
    report = edgekit.bench([cls_artifacts["ncnn"], cls_artifacts["mnn"], cls_artifacts["openvino"]], threads=1,
                           warmup=2, iterations=6, min_seconds=0, settle_ms=1, data=[str(p) for p in images],
                           memory="inprocess")
    assert [r.format for r in report.results] == ["ncnn", "mnn", "openvino"]
    assert "2 sample(s)" in report.inputs
    for r in report.results:
        _check_stats(r.stats, r.samples_ms)
        assert r.status == "ok" and r.ratio_to_reference is None  # no ONNX Runtime in the set
        assert r.memory_method.startswith("in process")
    ncnn = report.results[0].precision["settings"]
    assert ncnn["openmp_blocktime"] == 20 and ncnn["openmp_runtime"]
    assert report.recommendation["format"] in ("ncnn", "mnn", "openvino")
    out = report.write_json(tmp_path / "r.json")
    assert json.loads(out.read_text())["results"][0]["samples_ms"] == report.results[0].samples_ms


def test_plain_onnx_with_dynamic_axes(conv_model, tmp_path):
    code = main(["bench", str(conv_model), "--input-shape", "x:1x3x16x16", "--threads", "1", *QUICK,
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    (r,) = json.loads((tmp_path / "r.json").read_text())["results"]
    assert r["format"] == "onnx" and r["status"] == "reference" and r["peak_rss_added_mb"] is not None


@pytest.mark.parametrize("argv, message", [
    (["does/not/exist.onnx"], "no such file"),
    (["{model}", "--threads", "0"], "threads must be positive"),
    (["{model}", "--threads", "two"], "not a whole number"),
    (["{model}", "--iterations", "0"], "iterations"),
    (["{model}", "{model}", "--target", "ncnn"], "exactly one ONNX model"),
    (["{model}", "--target", "nosuchformat"], "unknown target"),
    (["{folder}"], "no edgekit.json"),
])
def test_bad_input_exits_2(conv_model, tmp_path, capsys, argv, message):
    argv = [a.format(model=conv_model, folder=tmp_path) for a in argv]
    assert main(["bench", *QUICK, *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_backend_exits_2(cls_artifacts, monkeypatch, capsys, tmp_path):
    from edgekit.backends import mnn

    monkeypatch.setattr(mnn.MnnBackend, "available", lambda self, *a, **k: False)  # as if MNN were not installed
    assert main(["bench", str(cls_artifacts["mnn"]), *QUICK]) == 2
    assert "MNN is not installed" in capsys.readouterr().err
    # an artifact of a format this edgekit does not know
    bad = tmp_path / "odd"
    bad.mkdir()
    manifest = json.loads((Path(cls_artifacts["ncnn"]) / "edgekit.json").read_text())
    manifest["format"] = "coreml"
    (bad / "edgekit.json").write_text(json.dumps(manifest))
    assert main(["bench", str(bad), *QUICK]) == 2
    assert "unknown format 'coreml'" in capsys.readouterr().err


@pytest.mark.slow
def test_one_shot_all_formats_on_ppocr_cls(tmp_path):
    """The issue's one-shot flow on a real model with every converter (TFLite's takes ~25 s)."""
    import edgekit
    from edgekit.fixtures import OCR_MODELS

    fx = OCR_MODELS["ppocr-cls"]
    report = edgekit.bench(fx.path, target="all", input_shapes=[fx.input_shape], preprocessing=fx.preprocessing,
                           threads=1, warmup=2, iterations=5, min_seconds=0, settle_ms=1)
    formats = {r.format: r for r in report.results}
    assert set(formats) == {"onnx", "ncnn", "mnn", "tflite", "openvino"}
    for r in formats.values():
        assert r.status in ("ok", "reference", "inaccurate", "failed")
        if r.status in ("ok", "reference"):
            _check_stats(r.stats, r.samples_ms)
    html = report.write_html(tmp_path / "r.html").read_text()
    assert html.count("<svg") >= 3
