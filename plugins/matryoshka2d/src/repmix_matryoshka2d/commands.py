"""Hooks of repmix-matryoshka2d (entry point ``repmix.hooks``): the ``repmix matryoshka2d-grid`` command."""

from __future__ import annotations

import argparse

from repmix.sdk import hookimpl

from repmix_matryoshka2d.grid import COMMAND, add_arguments, run  # no torch at import: `repmix --help` stays fast


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix matryoshka2d-grid``."""
    parser = subparsers.add_parser(
        COMMAND,
        help="(layer x dim) STS Spearman heat-maps of trained runs or an ablation (matryoshka2d)",
        description="Score every finished run (or every variant of an ablation) with matryoshka2d.sts-grid and "
        "write grid.csv, grid.md and grid.png (one heat-map per variant, seeds averaged).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
