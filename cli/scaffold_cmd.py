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
    p.add_argument(
        "--into",
        metavar="PLUGIN_DIR",
        help="add the component (named NAME) to this existing plugin package instead of creating a new one",
    )
    p.set_defaults(func=cmd_new_plugin)


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """Create the package and say how to install and test it."""
    from repmix.sdk.scaffold import add_component, create_plugin

    if args.into:
        written = add_component(args.name, args.kind, Path(args.into))
        for path in written:
            print(f"created {path}")
        print(f"registered {args.kind} {args.name!r} in {Path(args.into) / 'pyproject.toml'}")
        print(f"next: pip install -e '{args.into}[test]' && pytest {Path(args.into) / 'tests'}")
        return 0
    path = create_plugin(args.name, args.kind, Path(args.dir))
    print(f"created {path}")
    print(f"next: pip install -e '{path}[test]' && pytest {path / 'tests'}")
    return 0
