"""The folders edgekit ships beside the package (targets/, apps/, tools/): next to the package in a checkout
(the README's editable install), under <prefix>/share/edgekit/ in a wheel install (pyproject's data-files)."""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from .errors import EdgekitError

CHECKOUT = Path(__file__).resolve().parent.parent
INSTALLED = Path(sysconfig.get_path("data", vars={"base": sys.prefix})) / "share" / "edgekit"


def shipped(name: str) -> Path:
    """The folder `name` (targets, apps, tools) from the checkout, else from the wheel install."""
    for root in (CHECKOUT, INSTALLED):
        if (root / name).is_dir():
            return root / name
    raise EdgekitError(f"edgekit's {name}/ folder is neither in {CHECKOUT} nor in {INSTALLED}: reinstall edgekit")
