"""Entry-point discovery, per-kind registries, name resolution and pluggy hooks.

Importing this package does not import torch or any plugin module.
"""

from repmix.registry.discovery import GROUPS, KINDS, ComponentEntry, PluginInfo
from repmix.registry.hooks import get_hooks, get_plugin_manager, hookimpl, hookspec
from repmix.registry.registry import (
    Registry,
    get_registry,
    reset_registry,
    temporary_component,
)

__all__ = [
    "GROUPS",
    "KINDS",
    "ComponentEntry",
    "PluginInfo",
    "Registry",
    "get_hooks",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset_registry",
    "temporary_component",
]
