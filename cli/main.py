"""The ``repmix`` command line.

Every sub-command, built-in or a plugin's, is added by a ``repmix_add_commands``
pluggy hook: the built-in command modules below are registered as plugins of
the hook manager exactly as a plugin's ``repmix.hooks`` entry point is (the way
pytest ships its own features as plugins). Their heavy imports (torch,
plugins) happen inside the command functions, so ``repmix plugins list`` and
``repmix --help`` stay fast: plugins' hook modules are loaded only when the
command is not a built-in one.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

import pluggy

import repmix
from repmix.core.errors import RepmixError

#: Hook modules contributing built-in sub-commands, in help order.
COMMAND_MODULES = (
    "repmix.cli.plugins_cmd",
    "repmix.cli.model_cmds",
    "repmix.cli.train_cmds",
    "repmix.cli.scaffold_cmd",
    "repmix.cli.ablate_cmds",
    "repmix.cli.generate_cmd",
    "repmix.integrations.commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exits with status 2.

    Leaf commands parse intermixed, so dotted overrides may follow options:
    ``repmix train cfg.yaml -o runs/x train.lr=1e-4``.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {_did_you_mean(message)}\n")


def _did_you_mean(message: str) -> str:
    """argparse's "invalid choice: 'trian' (choose from ...)" plus the closest choice."""
    import re

    from repmix.core.errors import did_you_mean

    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not match:
        return message
    found, choices = match.group(1), re.findall(r"'([^']*)'", match.group(2)) or match.group(2).split(", ")
    what = "command" if message.startswith("argument COMMAND") else "choice"
    text = f"unknown {what} {found!r}"
    close = did_you_mean(found, choices)
    if close:
        text += f"; did you mean {close!r}?"
    return text + f"\n  {what}s: {', '.join(choices)}"


def build_parser(with_extensions: bool = False) -> argparse.ArgumentParser:
    """The argument parser; ``with_extensions`` adds plugins' commands to the built-in ones."""
    parser = _Parser(
        prog="repmix",
        description="Assemble, check, train, evaluate and compare representation models from YAML.",
        epilog="Run 'repmix COMMAND --help' for a command's options. Docs: docs/ in the repository.",
    )
    parser.add_argument("--version", action="version", version=f"repmix {repmix.__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    command_manager(with_extensions).hook.repmix_add_commands(subparsers=sub)
    return parser


def command_manager(with_extensions: bool) -> pluggy.PluginManager:
    """The hook manager that adds the commands: built-ins only, or also every plugin's hooks.

    pluggy calls the most recently registered implementation first, so the
    built-in modules are registered last and in reverse: their commands come
    first in help, in :data:`COMMAND_MODULES` order, before plugins' commands.
    """
    import importlib

    from repmix.registry.hooks import get_plugin_manager, make_manager

    pm = get_plugin_manager() if with_extensions else make_manager()
    for name in reversed(COMMAND_MODULES):
        if pm.get_plugin(name) is None:
            pm.register(importlib.import_module(name), name=name)
    return pm


def _wants_extensions(argv: Sequence[str], builtin: set[str]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return any(a in ("-h", "--help") for a in argv)
    return words[0] not in builtin


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``repmix`` console script. Returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser = build_parser()
        builtin = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
        if _wants_extensions(args_list, builtin):
            parser = build_parser(with_extensions=True)
        args = parser.parse_args(args_list)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0 if not args_list or debug else 2
        return int(args.func(args) or 0)
    except RepmixError as err:
        if debug:
            traceback.print_exc()
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an internal error: say so in one line, unless --debug
        if debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in repmix or a plugin; run again with --debug for the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
