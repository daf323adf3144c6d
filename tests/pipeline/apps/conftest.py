"""The apps' other graph files (full_range.yaml, v6.yaml) run once per backend per session, like app_run."""
from __future__ import annotations

import threading

import pytest

from tests.pipeline.conftest import APPS, AppRun, read_jsonl

_RUNS: dict = {}
_LOCK = threading.Lock()


@pytest.fixture(scope="session")
def graph_run(samples, pipeline_cache, tmp_path_factory):
    """graph_run("face", "full_range.yaml", "far_face", "mnn") -> AppRun of that graph on that sample video."""
    from edgekit.errors import EdgekitError
    from edgekit.pipeline import Overrides, build

    def get(app: str, graph: str, sample: str, backend: str) -> AppRun:
        key = (app, graph, sample, backend)
        with _LOCK:
            if key not in _RUNS:
                out = tmp_path_factory.mktemp(f"{app}_{graph.split('.')[0]}_{sample}_{backend}")
                video, jsonl = out / "out.avi", out / "out.jsonl"
                o = Overrides(source=str(samples[sample]), sinks=[str(video)], backend=backend,
                              cache=str(pipeline_cache), options={"log.path": str(jsonl)})
                try:
                    summary = build(APPS / app / graph, o, log=lambda m: None).run()
                    _RUNS[key] = AppRun(backend, summary, read_jsonl(jsonl), video)
                except EdgekitError as e:
                    _RUNS[key] = AppRun(backend, error=str(e))
            return _RUNS[key]

    return get
