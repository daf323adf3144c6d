"""Nodes and the registry YAML graphs are built from.

A node is a small class: declare its input and output names, take options in `__init__`, and implement
`process(inputs, packet)`, which gets {input name: payload} for one timestamp and returns the payload of its
one output, a dict {output name: payload} for several, or None to emit nothing for this timestamp (the graph
then sends a timestamp bound so nothing downstream waits for it). `open()` runs before the graph starts
(load models there) and `close()` after it stopped, always.

    from edgekit.pipeline import Node, register

    @register("brightness")
    class Brightness(Node):
        inputs, outputs = ("frame",), ("value",)
        def process(self, inputs, packet):
            return float(inputs["frame"].mean())

A source has no inputs and implements `read()`, which returns the next payload, None at the end of the
stream, or raises `Retry` to say "nothing now" (a stream waiting to reconnect)."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import EdgekitError
from .packet import Packet

_REGISTRY: dict[str, type] = {}
# Built-in node modules, imported the first time a name is looked up.
BUILTIN_MODULES = ["edgekit.pipeline.nodes.sources", "edgekit.pipeline.nodes.transforms",
                   "edgekit.pipeline.nodes.inference", "edgekit.pipeline.nodes.render",
                   "edgekit.pipeline.nodes.sinks", "edgekit.pipeline.nodes.face", "edgekit.pipeline.nodes.ocr"]


class Node:
    kind = ""  # the registry name (set by @register)
    inputs: tuple[str, ...] = ("in",)
    outputs: tuple[str, ...] = ("out",)
    is_sink = False  # a terminal node (the flow limiter's back edge counts frames it finished)

    def __init__(self, name: str, **options):
        self.name = name
        self.graph = None  # the Pipeline, set when the node is added
        if options:
            raise EdgekitError(f"node '{name}' ({self.kind or type(self).__name__}): unknown option(s) "
                               f"{', '.join(sorted(options))}")

    def open(self) -> None:
        pass

    def process(self, inputs: dict[str, Any], packet: Packet):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Retry(Exception):
    """Raised by a source's read() when there is no frame now but the stream goes on (e.g. reconnecting)."""


class SourceNode(Node):
    inputs = ()
    outputs = ("frame",)
    live = False  # a live source (camera, stream, paced file) drops frames at the flow limiter; files block
    fps: float | None = None  # the source's frame rate where known (sinks use it)

    def read(self):
        raise NotImplementedError

    def wait_turn(self) -> None:
        """Called before read(): a paced source waits here for its next frame time (not counted as read time)."""

    def request_stop(self) -> None:
        """Called from another thread to make a blocking read() return soon."""


def register(kind: str):
    """Class decorator: make a node type available to YAML graphs under `kind`."""

    def deco(cls):
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise EdgekitError(f"node type '{kind}' is already registered by {_REGISTRY[kind].__module__}")
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return deco


def _load_builtins() -> None:
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


def node_types() -> dict[str, type]:
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def get(kind: str) -> type:
    if kind not in _REGISTRY:
        _load_builtins()
    if kind not in _REGISTRY:
        raise EdgekitError(f"unknown node type '{kind}'; known: {', '.join(sorted(_REGISTRY))} "
                           "(a graph can add its own with `imports:`)")
    return _REGISTRY[kind]


def import_user_module(ref: str, base: Path | None = None) -> None:
    """Import a module of user nodes: a dotted module name, or a .py file (relative to the graph's folder)."""
    if ref.endswith(".py"):
        path = Path(ref)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise EdgekitError(f"imports: {path}: no such file")
        name = f"edgekit_user_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[name]
            raise
    else:
        try:
            importlib.import_module(ref)
        except ImportError as e:
            raise EdgekitError(f"imports: cannot import '{ref}': {e}") from None
