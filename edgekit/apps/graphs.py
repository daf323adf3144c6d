"""The apps' graph files as the API reads them: a node's options by name, and an inference node opened on a
backend outside a running graph (the same Inference class, export cache and preprocessing a graph uses)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..pipeline.config import load_config
from ..pipeline.nodes.inference import Inference
from ..resources import shipped

WIRING = ("name", "type", "input", "inputs", "output", "outputs")


class ModelsOwner:
    """What FaceMesh and TextReader share: they own opened models in `self.models`, closed by close() or `with`."""

    models: list

    def close(self) -> None:
        for m in self.models:
            m.close()
        self.models = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AppGraph:
    """One shipped graph file (apps/<app>/<file>): its nodes' options, by node name."""

    def __init__(self, app: str, file: str, calib: str | Path | None = None):
        self.path = shipped("apps") / app / file
        self.cfg = load_config(self.path)
        self.nodes = {n["name"]: n for n in self.cfg["nodes"]}
        self.calib = calib
        self._calibration = None

    def options(self, name: str, kind: str) -> dict:
        spec = self.nodes.get(name)
        if spec is None or spec.get("type") != kind:
            raise EdgekitError(f"{self.path}: no {kind} node named '{name}' (the API reads it from there)")
        return {k: v for k, v in spec.items() if k not in WIRING}

    def model(self, name: str, backend: str, threads: int | None, precision: str | None,
              cache: str | Path | None, artifact: str | Path | None = None) -> Inference:
        """The graph's inference node `name`, opened on `backend` (exported into the cache once), or on
        `artifact` (an exported folder, as the pipeline's --artifact NODE=PATH)."""
        opts = self.options(name, "inference")
        opts.update(backend=backend, threads=threads, cache=str(cache) if cache else None,
                    artifact=str(artifact) if artifact else None)
        if precision is not None:
            opts["precision"] = precision
        node = Inference(name, **opts)
        node.base = self.path.parent
        node.calibration = self.calibration()
        node.open()
        return node

    def calibration(self):
        """The graph's int8 calibration (pipeline/calibration.py) on `calib`, else the graph's own source."""
        from ..pipeline.calibration import Calibration
        from ..pipeline.config import calibration_build

        if self._calibration is None:
            media = self.calib
            if media is None:
                uri = self.nodes.get("source", {}).get("uri")
                media = next((p for p in (Path(str(uri)), self.path.parent / str(uri)) if p.exists()), None) \
                    if uri is not None else None
            self._calibration = Calibration(self.cfg, media, calibration_build(self.path.parent),
                                            "of the app graph is not there")
        return self._calibration


def run_images(model: Inference, images: list[np.ndarray]) -> tuple[list[dict], list]:
    """Each image through the model's preprocessing and runner: (outputs per image, transforms per image)."""
    out = model.process({"in": {"images": images}}, None)
    return out["outputs"], out["input_transforms"]


def check_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise EdgekitError(f"process() takes a BGR frame: a uint8 array of shape (H, W, 3), not {what}")
    return frame


def check_backend(backend: str) -> str:
    from .. import backends

    if backend not in backends.formats():
        raise EdgekitError(f"unknown backend '{backend}'; use one of: {', '.join(backends.formats())}")
    return backend


def choose(what: str, value, known: dict):
    if value not in known:
        raise EdgekitError(f"{what} must be one of {', '.join(map(repr, known))}, not {value!r}")
    return known[value]
