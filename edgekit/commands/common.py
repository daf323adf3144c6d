"""Options and output pieces shared by several sub-commands."""
from __future__ import annotations

import contextlib
import sys

from ..manifest import LAYOUTS, RESIZE_MODES, Preprocessing


def add_preprocessing_args(p) -> None:
    g = p.add_argument_group("preprocessing (stored in the manifest, used by `run IMAGE`, check and pipelines)")
    g.add_argument("--mean", help="per-channel mean after scaling, e.g. 0.485,0.456,0.406 (or one value)")
    g.add_argument("--std", help="per-channel std after scaling, e.g. 0.229,0.224,0.225 (or one value)")
    g.add_argument("--scale", type=float, default=None, help="multiply 0..255 pixels by this first (default 1/255)")
    order = g.add_mutually_exclusive_group()
    order.add_argument("--rgb", dest="color", action="store_const", const="rgb", help="the model takes RGB")
    order.add_argument("--bgr", dest="color", action="store_const", const="bgr", help="the model takes BGR")
    g.add_argument("--resize", choices=RESIZE_MODES, default=None)
    g.add_argument("--layout", choices=LAYOUTS, default=None, help="the ONNX input's layout")


def _floats(text: str | None, n: int = 3) -> list[float] | None:
    if text is None:
        return None
    from ..errors import EdgekitError

    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise EdgekitError(f"'{text}' is not a comma list of numbers") from None
    return vals * n if len(vals) == 1 else vals


def preprocessing_from_args(args) -> Preprocessing | None:
    given = [args.mean, args.std, args.scale, args.color, args.resize, args.layout]
    if all(v is None for v in given):
        return None
    p = Preprocessing()
    p.mean = _floats(args.mean) or p.mean
    p.std = _floats(args.std) or p.std
    p.scale = args.scale if args.scale is not None else p.scale
    p.color = args.color or p.color
    p.resize = args.resize or p.resize
    p.layout = args.layout or p.layout
    return p.validate()  # fields set one by one: __post_init__ saw only the defaults


def call_with(func, args, **given):
    """Call a library function with the parsed flags whose `dest` names one of its parameters (the CLI names
    its flags' dests after the Python parameters, so the two front ends share one set of names), plus `given`
    for what the command builds itself (preprocessing, progress, ...)."""
    import inspect

    params = inspect.signature(func).parameters
    first = next(iter(params))  # the positional subject (model, artifacts) is given by the command
    kwargs = {name: getattr(args, name) for name in params if name != first and hasattr(args, name)}
    kwargs.update(given)
    subject = kwargs.pop(first, getattr(args, first, None))
    return func(subject, **kwargs)


def console(stderr: bool = False, width: int = 160):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Wide tables when piped to a file or a CI log instead of rich's 80-column default.
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else width)


def print_table(con, header, rows, keys=(0,), left=(), title: str | None = None) -> None:
    """Print `rows` (cells are rich markup) under `header` no wider than `con`, never cutting a number: cells
    do not wrap, and when the columns do not all fit they are split over several tables, each repeating the
    columns `keys` (what names a row), which may fold."""
    from rich.table import Table
    from rich.text import Text

    widths = [max([len(h)] + [Text.from_markup(row[i]).cell_len for row in rows]) for i, h in enumerate(header)]
    room = (con.width or 80) - 1  # the table's left border; each column adds its padding and a border (3)
    key_width = sum(min(widths[i], 24) + 3 for i in keys)
    groups, group, used = [], [], key_width
    for i in (i for i in range(len(header)) if i not in keys):
        if group and used + widths[i] + 3 > room:
            groups.append(group)
            group, used = [], key_width
        group.append(i)
        used += widths[i] + 3
    groups.append(group)
    for n, cols in enumerate(groups):
        table = Table(title=title if n == 0 else None, title_justify="left")
        for i in [*keys, *cols]:
            key = i in keys
            table.add_column(header[i], justify="left" if key or header[i] in left else "right",
                             no_wrap=not key, overflow="fold", min_width=None if key else widths[i])
        for row in rows:
            table.add_row(*[row[i] for i in [*keys, *cols]])
        con.print(table)


@contextlib.contextmanager
def status(message: str):
    """A spinner on stderr while converters run (plain lines when stderr is not a terminal)."""
    from rich.markup import escape

    con = console(stderr=True)
    if sys.stderr.isatty():
        with con.status(message) as st:
            yield lambda text: st.update(escape(text))
    else:
        yield lambda text: con.print(text, markup=False)


def fmt_float(v: float | None, digits: int = 6) -> str:
    if v is None:
        return "-"
    if v == float("inf"):
        return "inf"
    return f"{v:.{digits}f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
