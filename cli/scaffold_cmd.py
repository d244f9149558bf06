"""``repmix new-plugin``: generate an installable plugin package."""

from __future__ import annotations

import argparse
from pathlib import Path
from repmix.registry.hooks import hookimpl

KIND_CHOICES = ("tokenizer", "encoder", "pooler", "aligner", "loss")


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``new-plugin`` command (a ``repmix_add_commands`` hook, like any plugin's)."""
    sub = subparsers
    p = sub.add_parser(
        "new-plugin",
        help="generate a plugin package (pyproject, component, conformance test, README)",
        description="Generate an installable plugin distribution repmix-NAME with one working component "
        "of KIND, registered as an entry point, and a test that runs the SDK conformance kit on it.",
    )
    p.add_argument("name", help="plugin name: lowercase letters, digits and dashes (e.g. my-pooler)")
    p.add_argument("--kind", required=True, choices=KIND_CHOICES, help="kind of the example component")
    p.add_argument("--dir", default=".", help="parent directory to create the package in (default: .)")
    p.set_defaults(func=cmd_new_plugin)


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """Create the package and say how to install and test it."""
    from repmix.sdk.scaffold import create_plugin

    path = create_plugin(args.name, args.kind, Path(args.dir))
    print(f"created {path}")
    print(f"next: pip install -e '{path}[test]' && pytest {path / 'tests'}")
    return 0
