"""int8 calibration for a graph's inference nodes, from the graph's own sample media.

A node fed by another model's output (OCR's classifier and recogniser take the detector's line crops, the face
landmarker the detector's face crops) must be calibrated on what it really sees, so the calibration inputs are
recorded, not made: the graph's fp32 part that feeds its models (sources, preprocessing, every inference node
on ONNX Runtime, the postprocessing between them; sinks left out) runs once over the first FRAMES frames of the
media, and every inference node records the tensors it is fed, after its own preprocessing. The first three
quarters of those frames calibrate, the last quarter is held out for the export's gate; each node's tensors are
written as .npz files (`<cache>/calib/<key>/<node>/{calib,held_out}/`), the form `export --calib/--data` takes.
An fp16 export is verified on both folders where the media is there (a task metric on generated inputs means
little), else on the export's generated inputs.

`key` names the media (its content hash), the frame count and the gate (metric, budget), so an artifact
exported into the cache is reused only for the same calibration and gate."""
from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..fsutil import sha256

FRAMES = 16  # frames read from the media (at most): 3/4 calibrate, 1/4 is held out for the gate


def media_digest(media: Path) -> str:
    """The media's content hash: a file's sha256, or a folder's over its files' names and hashes."""
    if media.is_file():
        return sha256(media)
    if media.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in media.iterdir() if p.is_file()):
            h.update(f"{f.name}:{sha256(f)}\n".encode())
        return h.hexdigest()
    raise EdgekitError(f"int8 calibration media {media}: no such file or folder")


class Calibration:
    """The recorded inputs of every inference node of one graph on one media, made once when first asked for."""

    def __init__(self, cfg: dict, media: str | Path | None, build, why: str = "", frames: int = FRAMES):
        """`build(cfg, **overrides)`: the graph builder (pipeline.config.calibration_build, handed in)."""
        self.cfg, self.frames, self.why, self.build = cfg, frames, why, build
        self.media = Path(media) if media is not None else None
        self._lock = threading.Lock()
        self._recorded: dict[str, list[tuple[int, dict]]] | None = None
        self._seen = 0

    def key(self, gate: str) -> str:
        """What an int8 artifact made from this calibration is keyed by: media, frames, the gate."""
        media = self._media()
        return hashlib.sha256(f"{media_digest(media)}:{self.frames}:{gate}".encode()).hexdigest()[:12]

    def usable(self) -> bool:
        """Whether there is media to record from (fp16 verifies on it where there is; int8 needs it)."""
        return self.media is not None and (self.media.is_file() or self.media.is_dir())

    def _media(self) -> Path:
        if not self.usable():
            what = f"the source {self.why}" if self.media is None else f"{self.media}: no such file or folder"
            raise EdgekitError(f"int8 needs calibration frames from sample media, a video file or an image folder "
                               f"({what}); give --calib VIDEO|FOLDER (calib= in Python)")
        return self.media

    def folders(self, node: str, cache: Path, key: str) -> tuple[Path, Path | None]:
        """`node`'s calibration folder and held-out folder (None when the held-out frames fed it nothing: the
        export then holds out a quarter of the calibration samples itself), written once per key."""
        root = cache / "calib" / key / node
        calib, held = root / "calib", root / "held_out"
        if not calib.is_dir():
            feeds = self.recorded(cache).get(node, [])
            split = self._seen - max(1, self._seen // 4)
            first = [f for seq, f in feeds if seq < split]
            rest = [f for seq, f in feeds if seq >= split]
            if not first:
                raise EdgekitError(f"int8: inference node '{node}' was fed nothing on the {split} calibration "
                                   f"frame(s) of {self.media} (the models upstream of it found nothing there); "
                                   "give --calib media where they do")
            tmp = root.with_name(root.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            for folder, part in (("calib", first), ("held_out", rest)):
                (tmp / folder).mkdir(parents=True)
                for i, f in enumerate(part):
                    np.savez(tmp / folder / f"{i:04d}.npz", **f)
            shutil.rmtree(root, ignore_errors=True)
            tmp.replace(root)
        return calib, (held if held.is_dir() and any(held.iterdir()) else None)

    def recorded(self, cache: Path) -> dict[str, list[tuple[int, dict]]]:
        """Node name -> [(frame index, feeds)], from one fp32 run of the graph's model part on the media."""
        with self._lock:
            if self._recorded is None:
                self._recorded = self._record(cache)
            return self._recorded

    def _record(self, cache: Path) -> dict[str, list[tuple[int, dict]]]:
        from .nodes.inference import Inference

        media = self._media()
        cfg = {k: v for k, v in self.cfg.items() if k != "backend"}
        cfg["nodes"] = feeding_models(self.cfg["nodes"])
        p = self.build(cfg, source=str(media), backend="onnx", precision="fp32", cache=str(cache))
        nodes = [n for n in p.nodes.values() if isinstance(n, Inference)]
        for n in nodes:
            n.recorded = []
        summary = p.run_inline(max_frames=self.frames)
        self._seen = summary.frames_in
        if self._seen < 2:
            raise EdgekitError(f"int8 calibration: {media} has {self._seen} frame(s); it needs at least 2 (some "
                               "to calibrate on, one held out for the gate)")
        return {n.name: n.recorded for n in nodes}


def feeding_models(nodes: list[dict]) -> list[dict]:
    """The node specs that inference nodes depend on (and the inference nodes): what calibration runs."""
    def streams(spec, key):
        v = spec.get(key + "s", spec.get(key))
        vals = v.values() if isinstance(v, dict) else v if isinstance(v, list) else [] if v is None else [v]
        return [x["stream"] if isinstance(x, dict) else str(x) for x in vals]

    producer = {s: spec["name"] for spec in nodes for s in streams(spec, "output")}
    by_name = {spec["name"]: spec for spec in nodes}
    keep: set[str] = set()
    todo = [spec["name"] for spec in nodes if spec.get("type") == "inference"]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        spec = by_name[name]
        todo += [producer[s] for s in streams(spec, "input") if s in producer]
        if spec.get("model_node"):  # a preprocess/decode node that opens another node
            todo.append(spec["model_node"])
    return [dict(spec) for spec in nodes if spec["name"] in keep]
