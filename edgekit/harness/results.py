"""What `bench` measures, as data: one BenchResult per artifact and thread count, and the BenchReport that
holds them with the environment and the methodology. The writers (JSON, Markdown, HTML) are in `report`,
which knows nothing of these classes beyond their fields, so the two modules import one way only."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import report


@dataclass
class BenchResult:
    label: str  # a short unique name for tables and plots
    artifact: str
    format: str
    threads: int
    status: str = "ok"  # ok | inaccurate | failed | unverified | reference | error
    error: str | None = None
    runtime: str = ""
    versions: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict)
    size_mb: float | None = None
    worst_cosine: float | None = None
    verification: dict | None = None
    import_s: float | None = None
    load_s: float | None = None
    first_inference_s: float | None = None
    peak_rss_added_mb: float | None = None
    memory_method: str = ""
    process_peak_rss_mb: float | None = None
    stats: dict | None = None  # latency.Stats.to_dict(), ms
    ratio_to_reference: float | None = None  # median / ONNX Runtime's median (a latency ratio)
    ratio_to_fastest: float | None = None  # median / the lowest median (1.0 is the fastest)
    speed_vs_reference: float | None = None  # ONNX Runtime's median / median: > 1 is faster (what reports show)
    unstable: str | None = None  # why the measurement is not to be trusted (cv, machine load); None when stable
    blocks: int = 0
    samples_ms: list = field(default_factory=list)
    warmup_ms: list = field(default_factory=list)
    export_seconds: float | None = None

    @property
    def median(self) -> float | None:
        return self.stats["median"] if self.stats else None

    @property
    def fps(self) -> float | None:
        """Frames per second from the median, as every table states it (1000 / median ms)."""
        return report.fps(self.stats)


@dataclass
class BenchReport:
    title: str
    created: str
    edgekit: str
    environment: dict
    methodology: dict
    settings: dict
    results: list[BenchResult]
    one_shot: bool = False
    model: str | None = None
    inputs: str = ""
    recommendation: dict | None = None
    schedules: dict = field(default_factory=dict)  # threads -> [(round, label, calls)]
    artifacts_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def write_json(self, path) -> Path:
        return report.write_json(self, path)

    def write_markdown(self, path) -> Path:
        return report.write_markdown(self, path)

    def write_html(self, path) -> Path:
        return report.write_html(self, path)


def load_json(path) -> BenchReport:
    """A BenchReport back from its JSON (to re-render Markdown/HTML from a saved run)."""
    data = json.loads(Path(path).read_text())
    data.pop("schema", None)
    data["results"] = [BenchResult(**r) for r in data["results"]]
    data["schedules"] = {k: [tuple(x) for x in v] for k, v in data.get("schedules", {}).items()}
    return BenchReport(**data)
