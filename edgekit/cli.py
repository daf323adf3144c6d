"""The `edgekit` command: a thin layer over the library. Every sub-command is a call a Python user can make.

Sub-commands live in modules that provide `register(subparsers)`; each registered parser sets `func`,
which takes the parsed args and returns an exit code. User errors (EdgekitError) print one line, exit 2."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that add sub-commands, in the order `edgekit --help` lists them.
COMMAND_MODULES = [
    "edgekit.commands.export",
    "edgekit.commands.import_",
    "edgekit.commands.run",
    "edgekit.commands.check",
    "edgekit.commands.inspect",
    "edgekit.commands.targets",
    "edgekit.commands.demo",
    "edgekit.commands.pipeline",
    "edgekit.commands.bench",
]


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="edgekit", description="Take an ONNX model to edge devices and prove "
                                     "it still works there: export, run, check, bench, pipelines.")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import EdgekitError
    from .options import cli_spelling

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with cli_spelling():
            return int(args.func(args) or 0)
    except EdgekitError as e:
        print(f"edgekit {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"edgekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
