"""The `edgekit` command: a thin layer over the library. Every sub-command is a call a Python user can make.

Sub-commands live in modules that provide `register(subparsers)`; each registered parser sets `func`,
which takes the parsed args and returns an exit code. User errors (EdgekitError) print one line, exit 2."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

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
    "edgekit.commands.bundle",
    "edgekit.commands.verify",
]


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="edgekit", description="Take an ONNX model to edge devices and prove "
                                     "it still works there: export, run, check, bench, pipelines.")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show what converters and runtimes print themselves (quiet by default)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    from .commands.fleet import REMOTE_COMMANDS, add_remote_args

    for name in REMOTE_COMMANDS:  # --on ssh://... / --fleet devices.toml: the same command on the user's devices
        if name in sub.choices:
            add_remote_args(sub.choices[name])
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that it unwinds like Ctrl-C: every atomic_dir and
    temporary folder on the way out is removed, converters' process groups are killed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # the signal that ended this run, for a command that stops cleanly on it (pipeline)


def _terminate(signum, frame):
    for s in (signal.SIGTERM, signal.SIGHUP):  # one is enough: let the clean-up run to its end
        signal.signal(s, signal.SIG_IGN)
    _received.append(signum)
    raise Terminated(signum)


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr may be gone too (SIGHUP: the terminal closed)
        print(message, file=sys.stderr)


@contextlib.contextmanager
def _signals_as_interrupts():
    """SIGTERM and SIGHUP raise Terminated while the command runs (main thread only); the old handlers come back
    afterwards, so main() can be called from Python too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, _terminate) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _stdout_gone() -> None:
    """The reader of our stdout went away (`edgekit inspect ... | head`): Python's recipe, point stdout at
    devnull so that the final flush at exit cannot fail again, and exit quietly."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _stdout_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    from .errors import EdgekitError
    from .fsutil import run_tempdir, sweep_temp
    from .options import cli_spelling

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.verbose:
        os.environ["EDGEKIT_VERBOSE"] = "1"
    stdout_was_devnull = _stdout_is_devnull()
    try:
        with _signals_as_interrupts(), cli_spelling():
            # this run's scratch (ours and the converters') in one owner-marked temp folder, removed on the way
            # out and, if this run is killed, by the next one; --keep-workdir folders go to the plain temp dir
            _received.clear()
            if getattr(args, "keep_workdir", False):
                sweep_temp()
                scratch = contextlib.nullcontext()
            else:
                scratch = run_tempdir()
            with scratch:
                if getattr(args, "on", None) or getattr(args, "fleet", None):
                    from .commands import fleet

                    code = fleet.main(args, list(sys.argv[1:] if argv is None else argv))
                else:
                    code = int(args.func(args) or 0)
            if _received and code == 130:  # a command that caught it and stopped cleanly (pipeline): say which
                _say(f"edgekit {args.command}: terminated by {signal.Signals(_received[0]).name}")
                return 128 + _received[0]
            return code
    except EdgekitError as e:
        _say(f"edgekit {args.command}: error: {e}")
        return e.exit_code
    except Terminated as e:
        _say(f"edgekit {args.command}: terminated by {e}")
        return 128 + e.signum
    except KeyboardInterrupt:
        _say(f"edgekit {args.command}: interrupted")
        return 130
    except BrokenPipeError:
        _stdout_gone()
        return 141  # as a process killed by SIGPIPE, which is what `head` expects of the writer
    except SystemExit as e:
        if e.code == 1 and _stdout_is_devnull() and not stdout_was_devnull:
            return 141  # rich met the broken pipe first: it points stdout at devnull and exits 1
        raise


if __name__ == "__main__":
    sys.exit(main())
