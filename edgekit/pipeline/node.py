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

The options a node takes are its `__init__`'s keyword parameters (`option_schema`, with their annotations as
types): a graph that gives one it does not declare, or a value of the wrong type, is refused before the run.

A source has no inputs and implements `read()`, which returns the next payload, None at the end of the
stream, or raises `Retry` to say "nothing now" (a stream waiting to reconnect)."""
from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
import typing
from dataclasses import dataclass
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
    # Cheap and never blocking (tens of microseconds of decoding or a buffered write): the graph may run it in
    # its producer's thread instead of its own, where its one input is a blocking edge (Pipeline(fuse_light=))
    light = False

    def __init__(self, name: str, **options):
        self.name = name
        self.graph = None  # the Pipeline, set when the node is added
        if options:
            raise unknown_key(f"node '{name}' ({self.kind or type(self).__name__})", "option", options,
                              option_schema(type(self)))

    def open(self) -> None:
        pass

    def process(self, inputs: dict[str, Any], packet: Packet):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def output_files(self) -> list[Path]:
        """The files this node writes (sinks): checked before the run, listed after it."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def unknown_key(where: str, what: str, keys, known) -> EdgekitError:
    """One line for keys nobody reads: the first one, the closest known key, and the known keys."""
    key = sorted(str(k) for k in keys)[0]
    close = difflib.get_close_matches(key, [str(k) for k in known], n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return EdgekitError(f"{where}: unknown {what} '{key}'{hint} "
                        f"(known: {', '.join(sorted(map(str, known))) or 'none'})")


@dataclass(frozen=True)
class Option:
    """One option a node type takes: its name, the Python type it must have where that is a plain scalar
    (int, float, bool, str; None where anything goes), whether it may be null, and whether it is required."""

    name: str
    type: type | None = None
    nullable: bool = True
    required: bool = False

    def check(self, where: str, value) -> None:
        if value is None:
            if self.nullable and not self.required:
                return
            raise EdgekitError(f"{where}: option '{self.name}' needs a value")
        t = self.type
        ok = (t is None or (t is bool and isinstance(value, bool))
              or (t is int and isinstance(value, int) and not isinstance(value, bool))
              or (t is float and isinstance(value, (int, float)) and not isinstance(value, bool))
              or (t is str and isinstance(value, (str, int, float)) and not isinstance(value, bool)))
        if not ok:
            raise EdgekitError(f"{where}: option '{self.name}' must be {_TYPE_WORDS[t]}, not {value!r}")


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@functools.lru_cache(maxsize=None)
def option_schema(cls: type) -> dict[str, Option]:
    """The options a node type declares: the keyword parameters of its `__init__` and of every base `__init__`
    it hands `**options` on to (the node's own signature is its schema; annotations give the types)."""
    schema: dict[str, Option] = {}
    for klass in cls.__mro__:
        if klass is Node or not issubclass(klass, Node):
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that does not resolve: types unchecked
            hints = {}
        params = list(inspect.signature(init).parameters.values())[2:]  # self, name
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in schema:
                continue
            t, nullable = _scalar(hints.get(p.name))
            schema[p.name] = Option(p.name, t, nullable or p.default is None, p.default is inspect.Parameter.empty)
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return schema


def _scalar(hint) -> tuple[type | None, bool]:
    """An annotation -> (the scalar type to check, or None; whether None is allowed)."""
    if hint in (int, float, bool, str):
        return hint, False
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else ()
    rest = [a for a in args if a is not type(None)]
    if len(rest) == 1 and rest[0] in (int, float, bool, str):
        return rest[0], len(rest) < len(args)
    return None, True


def check_options(where: str, cls: type, options: dict, known_extra=()) -> None:
    """Refuse, in one line, an option `cls` does not declare, a missing required one, or a scalar of the
    wrong type (`where` names the node)."""
    schema = option_schema(cls)
    unknown = [k for k in options if k not in schema and k not in known_extra]
    if unknown:
        raise unknown_key(where, "option", unknown, [*schema, *known_extra])
    for opt in schema.values():
        if opt.name in options:
            opt.check(where, options[opt.name])
        elif opt.required:
            raise EdgekitError(f"{where}: needs option '{opt.name}'")


def make(name: str, cls: type, given: dict, options: dict):
    """`cls(name, **given, **the options it declares)` -> (the node, the option names it does not take): for
    a source or sink picked from a --source/--sink string, where some of a graph's options fit another kind."""
    schema = option_schema(cls)
    taken = {k: v for k, v in options.items() if k in schema and k not in given}
    return cls(name, **given, **taken), sorted(k for k in options if k not in taken and k not in given)


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
        close = difflib.get_close_matches(str(kind), list(_REGISTRY), n=1, cutoff=0.6)
        raise EdgekitError(f"unknown node type '{kind}'{f' (did you mean {close[0]!r}?)' if close else ''}; known: "
                           f"{', '.join(sorted(_REGISTRY))} (a graph can add its own with `imports:`)")
    return _REGISTRY[kind]


def import_user_module(ref: str, base: Path | None = None) -> None:
    """Import a module of user nodes: a dotted module name, or a .py file (relative to the graph's folder).
    This runs the module's code, as any import does. A module that fails to import is one line naming it."""
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
        except BaseException as e:
            del sys.modules[name]
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise EdgekitError(f"imports: {path}: the module failed: {_where(e, path)}") from None
    else:
        try:
            importlib.import_module(ref)
        except ImportError as e:
            raise EdgekitError(f"imports: cannot import '{ref}': {e}") from None
        except Exception as e:
            raise EdgekitError(f"imports: '{ref}': the module failed: {type(e).__name__}: {e}") from None


def _where(e: BaseException, path: Path) -> str:
    """`ValueError: bad (line 3)`: the error and the line of the user's file it came from."""
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                 if Path(f.filename).resolve() == path.resolve()), None)
    return f"{type(e).__name__}: {e}" + (f" (line {line})" if line else "")
