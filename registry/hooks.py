"""Cross-cutting extension points, carried by pluggy.

Hook implementations are registered under the entry-point group
``repmix.hooks`` (value: a module or object with ``@hookimpl`` functions).
Components are *not* hooks: they are entry points of their kind's group.

Compatibility promise: adding arguments to a hook is fine (pluggy passes only
those an implementation names); removing one needs a deprecation cycle.
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from typing import Any

import pluggy

from repmix.registry.discovery import OK, PluginInfo

PROJECT = "repmix"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorator for hook implementations in plugins: ``@hookimpl def repmix_...``.
hookimpl = pluggy.HookimplMarker(PROJECT)


class RepmixHookSpecs:
    """The hooks repmix calls. Each is documented in docs/hooks.md."""

    @hookspec
    def repmix_build_finished(self, model: Any, config: dict[str, Any]) -> None:
        """A model was assembled from ``config`` (the resolved config dict)."""

    @hookspec
    def repmix_train_step_end(self, step: int, logs: dict[str, float], run_dir: str | None) -> None:
        """An optimiser step finished; ``logs`` holds the loss and its named parts."""

    @hookspec
    def repmix_train_epoch_end(self, epoch: int, metrics: dict[str, float], run_dir: str | None) -> None:
        """A training epoch finished (after its checkpoint was written)."""

    @hookspec
    def repmix_evaluate_end(self, metrics: dict[str, float], run_dir: str | None) -> None:
        """An evaluation finished with these metrics."""

    @hookspec
    def repmix_add_commands(self, subparsers: argparse._SubParsersAction) -> None:
        """Add CLI sub-commands. Set ``func=callable(args) -> int`` as the parser default."""

    @hookspec
    def repmix_report_sections(self, run_dir: str, metrics: dict[str, float]) -> list[tuple[str, str]]:
        """Return extra ``(title, markdown)`` sections for a run's report."""


_manager: pluggy.PluginManager | None = None


def make_manager() -> pluggy.PluginManager:
    """A plugin manager with repmix's hook specifications and no implementations."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(RepmixHookSpecs)
    return pm


def load_hook_plugins(pm: pluggy.PluginManager, plugins: list[PluginInfo]) -> list[str]:
    """Register the ``repmix.hooks`` entry points of enabled plugins. Returns warnings."""
    problems: list[str] = []
    for info in plugins:
        if info.status != OK:
            continue
        for target in info.hooks:
            module_name, _, attr = target.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in filter(None, attr.split(".")):
                    obj = getattr(obj, part)
                pm.register(obj, name=f"{info.name}:{target}")
            except Exception as exc:  # a broken hook module is reported, never fatal
                msg = f"hooks of {info.distribution} ({target}) could not be loaded: {type(exc).__name__}: {exc}"
                problems.append(msg)
                warnings.warn(msg, stacklevel=2)
    return problems


def get_hooks() -> pluggy.HookRelay:
    """The process-wide hook relay, loading ``repmix.hooks`` entry points on first use."""
    global _manager
    if _manager is None:
        from repmix.registry.registry import get_registry

        pm = make_manager()
        load_hook_plugins(pm, get_registry().plugins)
        _manager = pm
    return _manager.hook


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (register objects on it in tests)."""
    get_hooks()
    assert _manager is not None
    return _manager


def reset_hooks() -> None:
    """Forget the loaded hook plugins."""
    global _manager
    _manager = None
