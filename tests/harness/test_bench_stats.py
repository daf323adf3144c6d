"""bench's numbers agree with each other: the median everywhere (FPS = 1000 / median), speed ratios in one
direction (> 1: faster than ONNX Runtime), unstable measurements flagged; and tables keep every digit in an
80-column terminal. Results are constructed from fixed samples: no timing in these tests."""
import io
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from edgekit.commands import bench as bench_cmd
from edgekit.commands import check as check_cmd
from edgekit.harness import bench, latency, report
from edgekit.harness.results import BenchReport, BenchResult


def _result(label, fmt, samples_ms, status="ok"):
    r = BenchResult(label=label, artifact=f"/tmp/{label}", format=fmt, threads=2, status=status,
                    precision={"weights": "fp32", "compute": "fp32"}, size_mb=1.25, worst_cosine=0.99999912)
    r.stats = latency.summarize(np.asarray(samples_ms) / 1e3).to_dict()
    r.unstable = bench.instability(r.stats, load1=0.5, cpus=2)
    return r


def _report(results, one_shot=True):
    bench._ratios(results)
    rep = BenchReport(title="bench conv.onnx", created="now", edgekit="0", environment={"cpu": "cpu",
                      "logical_cpus": 2}, methodology=dict(bench.METHODOLOGY), settings={"threads": [2]},
                      results=results, one_shot=one_shot, inputs="1 generated sample")
    rep.recommendation = bench.recommend(results)
    return rep


# skewed samples: mean and median differ, so a column that used the mean would show
REF = [10.0] * 40 + [11.5] * 10  # median 10, mean 10.3
FAST = [6.849] * 40 + [7.5] * 10  # median 6.849: 1.46x faster
SLOW = [14.6] * 50  # median 14.6: 1.46x slower


def _three():
    return [_result("onnx", "onnx", REF, status="reference"), _result("ncnn", "ncnn", FAST),
            _result("mnn", "mnn", SLOW)]


def test_fps_and_ratios_come_from_the_median_in_one_direction():
    ref, fast, slow = results = _three()
    rep = _report(results)
    assert fast.speed_vs_reference == ref.median / fast.median > 1 > slow.speed_vs_reference
    assert fast.ratio_to_reference == pytest.approx(1 / fast.speed_vs_reference)  # the JSON's latency ratio
    h, rows, _ = report.summary_table(rep)
    cells = {row[0]: dict(zip(h, row)) for row in rows}
    assert cells["onnx"]["FPS"] == "100.0" != f"{ref.stats['throughput']:.1f}"  # 1000 / median, not the mean
    assert cells["ncnn"]["FPS"] == f"{1000 / 6.849:.1f}" and fast.fps == 1000 / fast.median
    assert cells["ncnn"]["vs ONNX Runtime"] == "1.46x faster"
    assert cells["mnn"]["vs ONNX Runtime"] == "1.46x slower"
    assert cells["onnx"]["vs ONNX Runtime"] == "same speed"
    h, rows = report.detail_table(rep)
    detail = {row[0]: dict(zip(h, row)) for row in rows}
    assert detail["ncnn"]["vs ref"] == "1.46x faster" and detail["ncnn"]["vs fastest"] == "fastest"
    assert detail["onnx"]["vs fastest"] == f"{ref.median / fast.median:.2f}x slower"
    assert detail["onnx"]["FPS"] == "100.0"
    # the recommendation: the lowest median, in the table's words
    assert rep.recommendation["label"] == "ncnn"
    assert "median 6.849 ms (146.0 FPS), 1.46x faster than ONNX Runtime" in rep.recommendation["text"]
    assert "0.68x" not in report.to_markdown(rep) + report.to_html(rep)


def test_old_json_without_speed_vs_reference_reads_in_the_same_direction():
    r = BenchResult(label="x", artifact="x", format="ncnn", threads=1, ratio_to_reference=0.5)
    assert report._vs_reference(r) == "2.00x faster"


def test_a_high_cv_or_a_loaded_machine_is_flagged_unstable_everywhere():
    calm = {"cv": 0.05}
    assert bench.instability(calm, load1=1.0, cpus=2) is None
    assert bench.instability({"cv": 0.9}, load1=1.0, cpus=2) == "cv 90% > 25%"
    assert bench.instability(calm, load1=3.5, cpus=2) == "load average 3.50 > 2 CPUs"
    noisy = [1.0, 9.0, 2.0, 14.0, 1.5] * 10  # cv ~ 1.1
    results = _three()[:1] + [_result("ncnn", "ncnn", noisy)]
    assert results[0].unstable is None and results[1].unstable.startswith("cv ")
    rep = _report(results)
    warning = "ncnn at 2 thread(s): unstable measurement (cv"
    assert warning in report.to_markdown(rep) and warning in report.to_html(rep)
    assert rep.to_dict()["results"][1]["unstable"] == results[1].unstable  # the JSON field
    out = _render(bench_cmd.print_report, rep)
    assert f"warning: {warning}" in out.replace("\n", " ")


def _render(printer, rep, width=80) -> str:
    buf = io.StringIO()
    printer(rep, Console(file=buf, width=width, highlight=False, color_system=None))
    return buf.getvalue()


def test_bench_tables_keep_every_number_in_80_columns():
    rep = _report(_three())
    out = _render(bench_cmd.print_report, rep)
    assert "…" not in out and max(map(len, out.splitlines())) <= 80
    for _, rows in (report.summary_table(rep)[:2], report.detail_table(rep)):
        for row in rows:
            for cell in row[1:]:
                assert cell in out, cell


def test_check_table_keeps_every_number_in_80_columns():
    out_check = SimpleNamespace(name="prob", max_abs=1.234567e-07, max_rel=0.000123456, mean_abs=2.5e-08,
                                cosine=0.9999871, mean_cosine=0.99999, snr_db=131.25, psnr_db=140.5,
                                top1=1.0, top5=1.0, passed=True, needs_atol=1.2e-07, needs_rtol=0.0,
                                tolerance={"cos": 0.999, "atol": 1e-4, "rtol": 1e-3})
    artifact = SimpleNamespace(artifact="/tmp/out/conv_ncnn", format="ncnn", outputs=[out_check], bisect=None,
                               precision={"requested": "fp32", "compute": "fp32"}, versions={"ncnn": "1.0"})
    rep = SimpleNamespace(reference="conv.onnx", inputs="2 generated sample(s)", artifacts=[artifact],
                          edgekit="0")
    out = _render(check_cmd.print_report, rep)
    assert "…" not in out and max(map(len, out.splitlines())) <= 80
    for cell in next(check_cmd.rows(rep))[0]:
        assert cell in out, cell
    assert "0.999987 / 0.999990" in out  # the cosine column that showed as `1.0…`
