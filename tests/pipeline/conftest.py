"""Pipeline test fixtures: short sample videos and each app run once per backend per session.

Every backend's models are exported once into a session cache (the inference nodes export on first use, as
they do for users) and each app runs once per backend; the tests compare those runs with ONNX Runtime's."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
FACE_FRAMES = 30
OCR_FRAMES = 4
# Backends each app is expected to run correctly on (ONNX Runtime is the reference).
FACE_BACKENDS = ["onnx", "mnn", "openvino", "ncnn", "tflite"]
OCR_BACKENDS = ["onnx", "mnn", "openvino", "tflite", "ncnn"]


def _tools():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_sample_media
    finally:
        sys.path.pop(0)
    return make_sample_media


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict:
    """{face, ocr, ocr_truth}: the sample videos tools/make_sample_media.py makes, kept short."""
    return _tools().make(tmp_path_factory.mktemp("samples"), FACE_FRAMES, OCR_FRAMES)


@pytest.fixture(scope="session")
def pipeline_cache(tmp_path_factory) -> Path:
    """Exported models for the session. EDGEKIT_TEST_PIPELINE_CACHE reuses a folder across sessions (exports
    are keyed by the source model's hash and verified when made)."""
    import os

    keep = os.environ.get("EDGEKIT_TEST_PIPELINE_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("pipeline_cache")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class AppRun:
    def __init__(self, backend, summary=None, records=None, video=None, error=None):
        self.backend, self.summary, self.records, self.video, self.error = backend, summary, records, video, error


def run_app(app: str, source: Path, backend: str, out: Path, cache: Path, **extra) -> AppRun:
    """Run apps/<app>/graph.yaml through the Python API; errors are returned, not raised."""
    from edgekit.errors import EdgekitError
    from edgekit.pipeline import Overrides, build

    out.mkdir(parents=True, exist_ok=True)
    video, jsonl = out / f"{app}_{backend}.avi", out / f"{app}_{backend}.jsonl"
    o = Overrides(source=str(source), sinks=[str(video)], backend=backend, cache=str(cache),
                  options={"log.path": str(jsonl)}, **extra)
    try:
        summary = build(APPS / app / "graph.yaml", o, log=lambda m: None).run()
    except EdgekitError as e:
        return AppRun(backend, error=str(e))
    return AppRun(backend, summary, read_jsonl(jsonl), video)


_RUNS: dict = {}
_LOCK = threading.Lock()


@pytest.fixture(scope="session")
def app_run(samples, pipeline_cache, tmp_path_factory):
    """app_run("face", "mnn") -> AppRun, computed once per session."""

    def get(app: str, backend: str) -> AppRun:
        key = (app, backend)
        with _LOCK:
            if key not in _RUNS:
                _RUNS[key] = run_app(app, samples[app], backend, tmp_path_factory.mktemp(f"{app}_{backend}"),
                                     pipeline_cache)
            return _RUNS[key]

    return get


@pytest.fixture
def no_new_threads():
    """Fails the test if it leaves threads running."""
    before = set(threading.enumerate())
    yield
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads left running: {[t.name for t in left]}")
