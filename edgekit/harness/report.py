"""Bench reports: JSON (everything, every sample), Markdown (the tables) and one self-contained HTML file
(tables plus inline SVG plots drawn here: no scripts, no fonts or styles from the network)."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_text

STATUS_TEXT = {"ok": "ok", "reference": "reference", "inaccurate": "converted but inaccurate", "failed": "failed",
               "unverified": "unverified", "error": "error"}
STATUS_COLOR = {"ok": "#1a7f37", "reference": "#0969da", "inaccurate": "#b35900", "failed": "#cf222e",
                "unverified": "#6e7781", "error": "#cf222e"}
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]


# ---------------------------------------------------------------- JSON

def _clean(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return _clean(v.item())
    return v


def to_json(report) -> str:
    data = _clean(report.to_dict())
    data["schema"] = "edgekit-bench/1"
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def write_json(report, path) -> Path:
    path = Path(path)
    atomic_write_text(path, to_json(report))
    return path


# ---------------------------------------------------------------- tables (shared by Markdown, HTML, terminal)

def _f(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf"
    return f"{v:.{digits}f}"


def _cos(v):
    return "-" if v is None else f"{v:.6f}"


def fps(stats: dict | None) -> float | None:
    """Frames per second from the median (1000 / median ms): the statistic every table and ratio uses."""
    if not stats or not stats.get("median"):
        return None
    return 1e3 / stats["median"]


def fps_text(stats: dict | None) -> str:
    return f"{_f(fps(stats), 1)} FPS"


def speed_text(speed: float | None) -> str:
    """A speed ratio (> 1: faster) in one direction of words: '1.46x faster', '1.47x slower', 'same speed'."""
    if speed is None or not math.isfinite(speed) or speed <= 0:
        return "-"
    if round(speed, 2) == 1.0:
        return "same speed"
    return f"{speed:.2f}x faster" if speed > 1 else f"{1 / speed:.2f}x slower"


def _vs_reference(r) -> str:
    speed = r.speed_vs_reference
    if speed is None and r.ratio_to_reference:  # a JSON written before speed_vs_reference existed
        speed = 1 / r.ratio_to_reference
    return speed_text(speed)


def _vs_fastest(r) -> str:
    if not r.ratio_to_fastest:
        return "-"
    return "fastest" if round(r.ratio_to_fastest, 2) == 1.0 else speed_text(1 / r.ratio_to_fastest)


def unstable_warnings(report) -> list[str]:
    """One warning per unstable measurement, for the terminal and both reports."""
    return [f"warning: {r.label} at {r.threads} thread(s): unstable measurement ({r.unstable}); other work was "
            "competing for the CPU, rerun on a quieter machine before trusting these numbers"
            for r in report.results if getattr(r, "unstable", None)]


def multi_threads(report) -> bool:
    return len({r.threads for r in report.results}) > 1


def summary_table(report) -> tuple[list[str], list[list[str]], list[str]]:
    """The one-shot table (Ultralytics style): (header, rows, status per row)."""
    header = ["format"] + (["threads"] if multi_threads(report) else []) + [
        "status", "size MB", "worst cosine", "median ms", "p90 ms", "FPS", "vs ONNX Runtime"]
    rows, statuses = [], []
    for r in report.results:
        s = r.stats or {}
        row = [r.label] + ([str(r.threads)] if multi_threads(report) else []) + [
            STATUS_TEXT.get(r.status, r.status), _f(r.size_mb, 2), _cos(r.worst_cosine), _f(s.get("median")),
            _f(s.get("p90")), _f(fps(r.stats), 1), _vs_reference(r)]
        rows.append(row)
        statuses.append(r.status)
    return header, rows, statuses


def detail_table(report) -> tuple[list[str], list[list[str]]]:
    header = ["artifact", "threads", "precision", "load ms", "first ms", "min", "median", "mean", "p90", "p99",
              "max", "std", "CV %", "FPS", "n", "+peak RSS MB", "size MB", "vs ref", "vs fastest"]
    rows = []
    for r in report.results:
        if not r.stats:
            continue
        s = r.stats
        p = r.precision or {}
        prec = f"{p.get('weights', '?')}/{p.get('effective') or p.get('compute', '?')}"
        rows.append([r.label, str(r.threads), prec, _f(_ms(r.load_s), 1), _f(_ms(r.first_inference_s), 2),
                     _f(s["min"]), _f(s["median"]), _f(s["mean"]), _f(s["p90"]), _f(s["p99"]), _f(s["max"]),
                     _f(s["std"]), _f(100 * s["cv"], 1), _f(fps(s), 1), str(s["n"]),
                     _f(r.peak_rss_added_mb, 1), _f(r.size_mb, 2), _vs_reference(r), _vs_fastest(r)])
    return header, rows


def _ms(v):
    return None if v is None else v * 1e3


def versions_table(report) -> tuple[list[str], list[list[str]]]:
    header = ["artifact", "backend", "versions", "precision settings"]
    rows, seen = [], set()
    for r in report.results:
        if r.label in seen:
            continue
        seen.add(r.label)
        settings = (r.precision or {}).get("settings", {})
        rows.append([r.label, r.runtime, ", ".join(f"{k} {v}" for k, v in r.versions.items()) or "-",
                     ", ".join(f"{k}={v}" for k, v in settings.items()) or "-"])
    return header, rows


# ---------------------------------------------------------------- Markdown

def _md_table(header, rows) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    right = [i for i, h in enumerate(header) if h not in ("format", "artifact", "status", "precision", "backend",
                                                          "versions", "precision settings")]
    sep = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)


def to_markdown(report) -> str:
    env = report.environment
    out = [f"# {report.title}", "",
           f"{report.created} · edgekit {report.edgekit} · {env.get('cpu')} · {env.get('logical_cpus')} logical "
           f"CPUs · threads {', '.join(map(str, report.settings.get('threads') or []))}", ""]
    if report.one_shot:
        h, rows, _ = summary_table(report)
        out += [_md_table(h, rows), ""]
    warnings = unstable_warnings(report)
    out += [f"**Warning:** {w.removeprefix('warning: ')}" for w in warnings] + ([""] if warnings else [])
    if report.recommendation:
        out += [f"**Recommendation:** {report.recommendation['text']}", ""]
    h, rows = detail_table(report)
    if rows:
        out += ["## Latency (ms)", "", _md_table(h, rows), ""]
    errors = [r for r in report.results if r.error]
    if errors:
        out += ["## Problems", ""] + [f"- **{r.label}** ({r.status}): {r.error}" for r in errors] + [""]
    h, rows = versions_table(report)
    out += ["## Backends", "", _md_table(h, rows), ""]
    out += ["## Methodology", ""] + [f"- **{k}**: {v}" for k, v in report.methodology.items()]
    t = report.settings.get("timing", {})
    out += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in t.items()), f"Inputs: {report.inputs or '-'}", ""]
    return "\n".join(out)


def write_markdown(report, path) -> Path:
    path = Path(path)
    atomic_write_text(path, to_markdown(report))
    return path


# ---------------------------------------------------------------- SVG plots

def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _svg_open(width, height, title: str, title_x) -> list[str]:
    """The opening of every plot: the <svg> element (accessible by its title) and the title line."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
            f'<text x="{title_x}" y="18" class="t">{_e(title)}</text>']


def _nice_max(v: float) -> float:
    if v <= 0 or not math.isfinite(v):
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def _ticks(vmax: float, n: int = 5) -> list[float]:
    return [vmax * i / n for i in range(n + 1)]


def _tick_label(v: float) -> str:
    return f"{v:.3g}"


def box_stats(samples) -> dict:
    s = np.sort(np.asarray(samples, dtype=float))
    q1, med, q3 = (float(np.percentile(s, q)) for q in (25, 50, 75))
    iqr = q3 - q1
    lo_fence, hi_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = s[(s >= lo_fence) & (s <= hi_fence)]
    lo = float(inside.min()) if inside.size else float(s.min())
    hi = float(inside.max()) if inside.size else float(s.max())
    outliers = s[(s < lo_fence) | (s > hi_fence)]
    return {"q1": q1, "median": med, "q3": q3, "lo": lo, "hi": hi, "outliers": outliers.tolist(),
            "p99": float(np.percentile(s, 99))}


def svg_boxplot(groups: list[tuple[str, list[float]]], title: str = "Latency distribution (ms)") -> str:
    """Horizontal box plots: box = quartiles, line = median, whiskers = 1.5 IQR, dots = outliers (those beyond
    the axis are drawn at its end as a triangle), plus a faint strip of every sample."""
    groups = [(n, s) for n, s in groups if s]
    if not groups:
        return ""
    stats = [box_stats(s) for _, s in groups]
    # the axis ends past the largest upper whisker (robust), not at the largest sample: on a noisy machine one
    # 1-second stall would squash every box; samples beyond the axis are drawn at its end as red triangles
    vmax = _nice_max(max(st["hi"] for st in stats) * 1.15)
    left, right, row_h, top = 170, 30, 34, 34
    width = 820
    plot_w = width - left - right
    height = top + row_h * len(groups) + 40
    x = lambda v: left + plot_w * min(max(v, 0.0), vmax) / vmax  # noqa: E731
    parts = _svg_open(width, height, title, left)
    for tv in _ticks(vmax):
        parts.append(f'<line x1="{x(tv):.1f}" y1="{top - 6}" x2="{x(tv):.1f}" y2="{height - 34}" class="grid"/>')
        parts.append(f'<text x="{x(tv):.1f}" y="{height - 18}" text-anchor="middle" class="ax">'
                     f'{_tick_label(tv)}</text>')
    rng = np.random.default_rng(0)
    for i, ((name, samples), st) in enumerate(zip(groups, stats)):
        cy = top + row_h * i + row_h / 2
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" class="lab">{_e(name)}</text>')
        arr = np.asarray(samples, dtype=float)
        if arr.size > 400:
            arr = rng.choice(arr, 400, replace=False)
        jitter = rng.uniform(-row_h * 0.32, row_h * 0.32, arr.size)
        parts.append("".join(f'<circle cx="{x(v):.1f}" cy="{cy + j:.1f}" r="1.1" fill="{color}" '
                             f'fill-opacity="0.18"/>' for v, j in zip(arr, jitter)))
        bh = row_h * 0.5
        parts.append(f'<line x1="{x(st["lo"]):.1f}" y1="{cy:.1f}" x2="{x(st["hi"]):.1f}" y2="{cy:.1f}" '
                     f'stroke="#333" stroke-width="1"/>')
        for v in (st["lo"], st["hi"]):
            parts.append(f'<line x1="{x(v):.1f}" y1="{cy - bh / 3:.1f}" x2="{x(v):.1f}" y2="{cy + bh / 3:.1f}" '
                         f'stroke="#333"/>')
        parts.append(f'<rect x="{x(st["q1"]):.1f}" y="{cy - bh / 2:.1f}" '
                     f'width="{max(1.0, x(st["q3"]) - x(st["q1"])):.1f}" height="{bh:.1f}" fill="{color}" '
                     f'fill-opacity="0.55" stroke="#333"><title>{_e(name)}: median {st["median"]:.3f} ms, '
                     f'IQR {st["q1"]:.3f}-{st["q3"]:.3f} ms</title></rect>')
        parts.append(f'<line x1="{x(st["median"]):.1f}" y1="{cy - bh / 2:.1f}" x2="{x(st["median"]):.1f}" '
                     f'y2="{cy + bh / 2:.1f}" stroke="#000" stroke-width="2"/>')
        outs = st["outliers"]
        if len(outs) > 200:
            outs = list(np.asarray(outs)[np.linspace(0, len(outs) - 1, 200).astype(int)])
        for v in outs:
            if v > vmax:
                xe = x(vmax)
                parts.append(f'<path d="M{xe - 6:.1f},{cy - 4:.1f} L{xe:.1f},{cy:.1f} L{xe - 6:.1f},{cy + 4:.1f} Z" '
                             f'fill="#cf222e"><title>{v:.3f} ms</title></path>')
            else:
                parts.append(f'<circle cx="{x(v):.1f}" cy="{cy:.1f}" r="2" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle" class="ax">'
                 f'milliseconds per inference</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(report, title: str = "Median latency, ms (whisker: 95% CI of the median)") -> str:
    timed = [r for r in report.results if r.stats]
    if not timed:
        return ""
    labels = list(dict.fromkeys(r.label for r in timed))
    threads = sorted({r.threads for r in timed})
    by = {(r.label, r.threads): r for r in timed}
    vmax = _nice_max(max(max(r.stats["median_ci95"][1], r.stats["median"]) for r in timed) * 1.1)
    left, top, bottom = 60, 40, 60
    group_w = max(70, 40 * len(threads) + 30)
    width = max(480, left + group_w * len(labels) + 20)
    height = 320
    plot_h = height - top - bottom
    y = lambda v: top + plot_h * (1 - min(v, vmax) / vmax)  # noqa: E731
    parts = _svg_open(width, height, title, left)
    for tv in _ticks(vmax):
        parts.append(f'<line x1="{left}" y1="{y(tv):.1f}" x2="{width - 10}" y2="{y(tv):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tv) + 4:.1f}" text-anchor="end" class="ax">{_tick_label(tv)}'
                     f'</text>')
    bw = (group_w - 30) / len(threads)
    for gi, lab in enumerate(labels):
        gx = left + gi * group_w + 15
        for ti, t in enumerate(threads):
            r = by.get((lab, t))
            if not r:
                continue
            med = r.stats["median"]
            lo, hi = r.stats["median_ci95"]
            bx = gx + ti * bw
            color = PALETTE[ti % len(PALETTE)]
            parts.append(f'<rect x="{bx:.1f}" y="{y(med):.1f}" width="{bw - 2:.1f}" height="{y(0) - y(med):.1f}" '
                         f'fill="{color}"><title>{_e(lab)}, {t} thread(s): median {med:.3f} ms '
                         f'(95% CI {lo:.3f}-{hi:.3f})</title></rect>')
            cx = bx + (bw - 2) / 2
            parts.append(f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" stroke="#000"/>')
            parts.append(f'<text x="{cx:.1f}" y="{y(max(med, hi)) - 4:.1f}" text-anchor="middle" class="val">'
                         f'{med:.3g}</text>')
        parts.append(f'<text x="{gx + (group_w - 30) / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'class="lab">{_e(lab)}</text>')
    for ti, t in enumerate(threads):
        lx = left + ti * 110
        parts.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="12" fill="{PALETTE[ti % len(PALETTE)]}"/>'
                     f'<text x="{lx + 16}" y="{height - 12}" class="ax">{t} thread{"s" if t > 1 else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_timeline(groups: list[tuple[str, list[float]]], title: str = "Every sample in the order taken (ms)") -> str:
    """Small multiples: each artifact's samples in order, to show drift, throttling and noisy neighbours."""
    groups = [(n, s) for n, s in groups if s]
    if not groups:
        return ""
    width, row_h, left, top = 820, 70, 170, 30
    plot_w = width - left - 20
    height = top + row_h * len(groups) + 10
    parts = _svg_open(width, height, title, left)
    for i, (name, samples) in enumerate(groups):
        arr = np.asarray(samples, dtype=float)
        if arr.size > 1500:  # keep the file small: the maximum of each bucket keeps the spikes visible
            edges = np.linspace(0, arr.size, 1501).astype(int)
            arr = np.array([arr[a:b].max() for a, b in zip(edges[:-1], edges[1:]) if b > a])
        vmax = _nice_max(float(np.percentile(arr, 99.5)) * 1.1)
        y0 = top + row_h * i
        h = row_h - 16
        n = max(1, arr.size - 1)
        pts = " ".join(f"{left + plot_w * k / n:.1f},{y0 + h * (1 - min(v, vmax) / vmax):.1f}"
                       for k, v in enumerate(arr))
        parts.append(f'<text x="{left - 8}" y="{y0 + h / 2 + 4:.1f}" text-anchor="end" class="lab">{_e(name)}</text>')
        parts.append(f'<line x1="{left}" y1="{y0 + h}" x2="{left + plot_w}" y2="{y0 + h}" class="grid"/>')
        parts.append(f'<text x="{left + plot_w}" y="{y0 + 8}" text-anchor="end" class="ax">max axis '
                     f'{_tick_label(vmax)} ms</text>')
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" '
                     f'stroke-width="1"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- HTML

CSS = (
    '\n'
    'body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;'
    'max-width:1200px;color:#1f2328;padding:0 16px}\n'
    'h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;'
    'border-bottom:1px solid #d0d7de;padding-bottom:4px}\n'
    '.meta{color:#59636e;margin-bottom:12px} .rec{background:#dafbe1;border:1px solid #1a7f37;'
    'border-radius:6px;padding:10px 14px;margin:14px 0}\n'
    '.warn{background:#fff8c5;border:1px solid #9a6700;border-radius:6px;padding:10px 14px;'
    'margin:14px 0}\n'
    'table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}\n'
    'th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right;'
    'white-space:nowrap} th{background:#f6f8fa}\n'
    'td.l,th.l{text-align:left} .st{font-weight:600} .err{color:#cf222e;font-family:monospace;'
    'white-space:pre-wrap}\n'
    'svg{display:block;margin:8px 0;max-width:100%;height:auto} svg .t{font-weight:600;font-size:13px}\n'
    'svg .ax{font-size:11px;'
    'fill:#59636e} svg .lab{font-size:12px} svg .val{font-size:10px} svg .grid{stroke:#eaeef2}\n'
    'dl{display:grid;grid-template-columns:max-content auto;'
    'gap:4px 14px} dt{font-weight:600} dd{margin:0}\n'
)

LEFT_COLS = {"format", "artifact", "status", "precision", "backend", "versions", "precision settings", "threads"}


def _html_table(header, rows, statuses=None) -> str:
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"l" if h in LEFT_COLS else ""}">{_e(h)}</th>' for h in header]
    out.append("</tr></thead><tbody>")
    si = header.index("status") if "status" in header else -1
    for i, row in enumerate(rows):
        out.append("<tr>")
        for j, cell in enumerate(row):
            cls = "l" if header[j] in LEFT_COLS else ""
            if j == si and statuses:
                color = STATUS_COLOR.get(statuses[i], "#333")
                out.append(f'<td class="l st" style="color:{color}">{_e(cell)}</td>')
            else:
                out.append(f'<td class="{cls}">{_e(cell)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def accuracy_table(report) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["format", "status", "worst cosine", "max abs error", "checked on", "note"]
    rows, statuses, seen = [], [], set()
    for r in report.results:
        if r.label in seen:
            continue
        seen.add(r.label)
        v = r.verification or {}
        max_abs = max((o["max_abs"] for o in v.get("outputs", [])), default=None)
        note = r.error or ("the reference: ONNX Runtime fp32" if r.status == "reference" else "")
        rows.append([r.label, STATUS_TEXT.get(r.status, r.status), _cos(r.worst_cosine),
                     "-" if max_abs is None else f"{max_abs:.3g}", v.get("inputs", "-") or "-", note or ""])
        statuses.append(r.status)
    return header, rows, statuses


def to_html(report) -> str:
    env = report.environment
    threads = ", ".join(map(str, report.settings.get("threads") or []))
    body = [f"<h1>{_e(report.title)}</h1>",
            f'<div class="meta">{_e(report.created)} · edgekit {_e(report.edgekit)} · {_e(env.get("cpu"))} · '
            f'{_e(env.get("logical_cpus"))} logical CPUs · threads {_e(threads)} · {_e(env.get("os"))}</div>']
    if report.one_shot:
        h, rows, st = summary_table(report)
        body += ["<h2>Formats</h2>", _html_table(h, rows, st)]
    body += [f'<div class="warn"><b>Warning:</b> {_e(w.removeprefix("warning: "))}</div>'
             for w in unstable_warnings(report)]
    if report.recommendation:
        body.append(f'<div class="rec"><b>Recommendation:</b> {_e(report.recommendation["text"])}</div>')
    groups = [(f"{r.label} · {r.threads}t" if multi_threads(report) else r.label, r.samples_ms)
              for r in report.results if r.samples_ms]
    if groups:
        body += ["<h2>Latency distribution</h2>", svg_boxplot(groups), "<h2>Median latency</h2>", svg_bars(report)]
    h, rows = detail_table(report)
    if rows:
        body += ["<h2>Latency statistics (ms)</h2>", _html_table(h, rows)]
    h, rows, st = accuracy_table(report)
    body += ["<h2>Accuracy verdicts (against ONNX Runtime fp32)</h2>", _html_table(h, rows, st)]
    errors = [r for r in report.results if r.error]
    if errors:
        body += ["<h2>Problems</h2>"] + [f'<p><b>{_e(r.label)}</b> ({_e(r.status)}):</p><div class="err">'
                                         f'{_e(r.error)}</div>' for r in errors]
    if groups:
        body += ["<h2>Samples over time</h2>", svg_timeline(groups)]
    h, rows = versions_table(report)
    body += ["<h2>Backends and versions</h2>", _html_table(h, rows)]
    body.append("<h2>Methodology</h2><dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
                                                    for k, v in report.methodology.items()) + "</dl>")
    t = report.settings.get("timing", {})
    body.append("<h2>Settings and machine</h2><dl>"
                + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in t.items())
                + f"<dt>inputs</dt><dd>{_e(report.inputs or '-')}</dd>"
                + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in env.items()) + "</dl>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(report.title)}"
            f"</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html(report, path) -> Path:
    path = Path(path)
    atomic_write_text(path, to_html(report))
    return path
