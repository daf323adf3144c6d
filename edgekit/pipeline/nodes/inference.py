"""Inference: any edgekit artifact (or ONNX model) through the runner API, on the graph's backend.

Input payload: an array (the model's one input), a dict {input name: array}, a dict with `inputs` (one feed
dict or a list of them), or a dict with `images` (a list of BGR images, preprocessed here per the manifest).
Output payload: the input dict (minus `inputs`/`images`) plus `outputs`: {output name: array}, or a list of
those for a list of feeds, so metadata such as a preprocessing transform flows on to the postprocessing."""
from __future__ import annotations

from pathlib import Path

from ...errors import EdgekitError
from ...manifest import Preprocessing, TensorSpec
from .. import imageops, models
from ..node import Node, register


def preprocessing_from(value) -> Preprocessing | None:
    if value is None or isinstance(value, Preprocessing):
        return value
    if not isinstance(value, dict):
        raise EdgekitError(f"preprocessing must be a mapping, not {value!r}")
    known = set(Preprocessing.__dataclass_fields__)
    bad = set(value) - known
    if bad:
        raise EdgekitError(f"preprocessing: unknown key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    return Preprocessing(**value)


@register("inference")
class Inference(Node):
    inputs = ("in",)
    outputs = ("out",)

    def __init__(self, name: str, model: str, input_shape: str | list | None = None, preprocessing=None,
                 backend: str | None = None, artifact: str | None = None, threads: int | None = None,
                 cache: str | None = None, precision: str | None = None, metric: str | list | None = None,
                 max_drop: float = 0.01, fallback: bool = True, **options):
        super().__init__(name, **options)
        from ...exporter import PRECISIONS

        if precision is not None and precision not in PRECISIONS:
            raise EdgekitError(f"node '{name}': precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.precision = precision  # None: the graph's (--precision), else fp32
        self.metric = metric  # the task metric the fp16/int8 export gate judges by (export's `metric`)
        self.max_drop = max_drop
        self.fallback = bool(fallback)  # fp16/int8 refused by the gate: the next precision (models.FALLBACK)
        self.gate: models.Gate | None = None  # after open(): the precision used, and any refusals
        self.calibration = None  # the graph's Calibration (pipeline/calibration.py), for int8
        self.recorded: list | None = None  # while calibrating: [(frame index, feeds)] this node was fed
        self._seq = 0
        self.model = model
        self.input_shapes = [input_shape] if isinstance(input_shape, str) else list(input_shape or [])
        self.preprocessing = preprocessing_from(preprocessing)
        self.backend = backend
        self.artifact = artifact
        self.threads = threads
        self.cache = cache
        self.base: Path | None = None  # the graph file's folder, for relative paths
        self.runner = None
        self.spec: TensorSpec | None = None
        self.pre: Preprocessing | None = None

    def open(self) -> None:
        from ...runner import load

        if self.runner is not None:  # a preprocess node may have opened it first
            return
        backend = self.backend or (self.graph.info.get("backend") if self.graph else None) or "onnx"
        cache = Path(self.cache) if self.cache else (self.graph.info.get("cache") if self.graph else None)
        log = (self.graph.info.get("log") if self.graph else None) or (lambda m: None)
        precision = (self.graph.info.get("precision") if self.graph else None) or self.precision or "fp32"
        gate = self.gate = models.Gate(precision, self.metric, self.max_drop, self.calibration, self.name,
                                       self.fallback)
        path = self.artifact or models.artifact_for(self.model, backend, self.input_shapes, self.preprocessing,
                                                   base=self.base, cache=cache, log=log, gate=gate)
        self.path = Path(path)
        self.runner = load(path, threads=self.threads)
        self.format = self.runner.format
        # The static input size: the runner's where static, else the graph's input_shape (ONNX Runtime on a
        # dynamic model).
        spec = self.runner.inputs[0]
        shapes = models._shape_key(self.input_shapes) or {}
        if spec.name in shapes:
            spec = TensorSpec(spec.name, spec.dtype, shapes[spec.name])
        self.spec = spec
        self.pre = self.runner.manifest.preprocessing or self.preprocessing

    def model_info(self) -> dict:
        """What the run summary says about this node's model: format, precision asked and used, refusals."""
        g, m = self.gate, getattr(self.runner, "manifest", None)
        return {"format": getattr(self, "format", None), "path": str(getattr(self, "path", "")),
                "precision": m.precision.requested if m is not None else (g.used if g else None),
                "requested": g.precision if g else None, "refused": dict(g.refusals) if g else {}}

    def feed_image(self, img):
        if self.pre is None:
            raise EdgekitError(f"node '{self.name}': images need preprocessing; the artifact's manifest has none, "
                               "give `preprocessing:` in the graph")
        x, t = imageops.prepare(img, self.spec, self.pre, contiguous=not self.runner.strided_feeds)
        return {self.spec.name: x}, t

    def _run(self, feeds):
        if not isinstance(feeds, dict):
            feeds = {self.spec.name: feeds}
        if self.recorded is not None:
            self.recorded.append((self._seq, {k: v.copy() for k, v in feeds.items()}))
        return self.runner(feeds)

    def process(self, inputs, packet):
        self._seq = packet.seq if packet is not None else self._seq + 1
        x = inputs["in"]
        if not isinstance(x, dict):
            return {"outputs": self._run(x)}
        if "images" in x:
            results, transforms = [], []
            for img in x["images"]:
                feeds, t = self.feed_image(img)
                results.append(self._run(feeds))
                transforms.append(t)
            rest = {k: v for k, v in x.items() if k != "images"}
            return {**rest, "images_in": x["images"], "outputs": results, "input_transforms": transforms}
        if "inputs" in x:
            feeds = x["inputs"]
            outs = [self._run(f) for f in feeds] if isinstance(feeds, list) else self._run(feeds)
            return {**{k: v for k, v in x.items() if k != "inputs"}, "outputs": outs}
        return {"outputs": self._run(x)}

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
