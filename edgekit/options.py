"""How an option is spelled in a message. The library's errors tell the user what to change; the same
error reaches a CLI user (who types `--input-shape`) and a Python caller (who passes `input_shapes=`), so a
message names the option through `spell`, which gives the CLI flag under the CLI and both spellings
elsewhere. The CLI's flags carry the Python parameter names as their `dest`, so one name serves both."""
from __future__ import annotations

import contextlib
import contextvars

# Python parameter -> CLI flag, for the options library messages suggest.
FLAGS = {
    "input_shapes": "--input-shape",
    "force": "--force",
    "model": "--model",
    "dynamic": "--dynamic",
    "data": "--data",
    "samples": "--samples",
    "threads": "--threads",
    "target": "--target",
    "precision": "--precision",
    "out": "--out",
    "const": "--const",
    "recipe": "--recipe",
}

_cli = contextvars.ContextVar("edgekit_cli_spelling", default=False)


@contextlib.contextmanager
def cli_spelling():
    """While the CLI runs a command, messages name flags only."""
    token = _cli.set(True)
    try:
        yield
    finally:
        _cli.reset(token)


def spell(param: str, value: str | None = None) -> str:
    """`spell("input_shapes", "x:1x3xNxN")` -> "--input-shape x:1x3xNxN" under the CLI, else
    "--input-shape x:1x3xNxN (input_shapes=['x:1x3xNxN'] in Python)"."""
    flag = FLAGS.get(param, "--" + param.replace("_", "-"))
    cli = flag if value is None else f"{flag} {value}"
    if _cli.get():
        return cli
    py = f"{param}=True" if value is None else f"{param}=[{value!r}]" if param in ("input_shapes", "data", "const") \
        else f"{param}={value!r}"
    return f"{cli} ({py} in Python)"
