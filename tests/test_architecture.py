"""The house, redrawn from its imports (docs/architecture.md): no import circle between edgekit's modules,
function-level imports included, and no module imports from a layer above its own."""
from __future__ import annotations

import ast
from pathlib import Path

import edgekit

ROOT = Path(edgekit.__file__).parent

# Layers, lowest first: a module may import from its own layer and the ones before it.
LAYERS = [
    ("core", ["errors", "version", "options", "fsutil", "subproc", "resources", "manifest", "preprocess", "native"]),
    ("onnx", ["onnx"]),
    ("backends", ["backends", "targets", "quantize"]),
    ("runner", ["runner"]),
    ("harness", ["harness"]),
    ("flows", ["exporter", "importer", "workflows", "fixtures", "bundle", "remote"]),
    ("pipeline", ["pipeline", "mediapipe"]),
    ("apps", ["apps"]),
    ("front ends", ["commands", "cli", "__init__", "__main__"]),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    first = module.split(".")[1] if "." in module else "__init__"
    for i, (_, names) in enumerate(LAYERS):
        if first in names:
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: give it one")


def imports() -> dict[str, set[str]]:
    """module -> the edgekit modules it imports (anywhere in its body)."""
    mods = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from pkg import x`: x is a submodule, else a name defined in pkg itself
                names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:  # `import edgekit.a.b` when only edgekit.a is a module
                    name = name.rpartition(".")[0]
                if name and name != mod and name.startswith("edgekit"):
                    found.add(name)
        graph[mod] = found
    return graph


def test_no_module_imports_from_a_layer_above():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in imports().items() for d in deps
              if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = imports()
    for m in graph:  # a package's __init__ importing its own submodules is not a circle through the package
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".") and d != "edgekit"}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_public_functions_show_their_real_parameters():
    import inspect

    for name in ("export", "load", "check", "bench", "import_tflite"):
        fn = getattr(edgekit, name)
        params = inspect.signature(fn).parameters
        assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()), name
        assert fn.__module__ != "edgekit", f"edgekit.{name} is a wrapper, not the library's function"
    assert "input_shapes" in inspect.signature(edgekit.export).parameters
    assert "Args:" in edgekit.export.__doc__ and "Args:" in edgekit.bench.__doc__ and "Args:" in edgekit.load.__doc__
