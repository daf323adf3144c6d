"""CLI sub-commands, one module each, each with `register(subparsers)` (see edgekit.cli)."""
