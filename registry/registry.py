"""Per-kind registries: name resolution and lazy loading of component classes."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from repmix.core.errors import ConfigError, PluginError
from repmix.registry.discovery import (
    BROKEN,
    DISABLED,
    INCOMPATIBLE,
    KINDS,
    OK,
    ComponentEntry,
    PluginInfo,
    discover,
)

INSTALL_HINT = (
    "install a plugin distribution, for example the baselines: pip install repmix-std "
    "(from a checkout: pip install plugins/std); see docs/writing-a-plugin.md to write one"
)


class Registry:
    """All components known to this process, by kind.

    Build with :meth:`discover` (reads entry-point metadata, imports nothing).
    Classes are imported on first :meth:`load`.
    """

    def __init__(self, plugins: list[PluginInfo], note: str = "") -> None:
        self.plugins = plugins
        self.note = note
        self._loaded: dict[tuple[str, str], type] = {}
        self._temporary: dict[tuple[str, str], tuple[type, PluginInfo]] = {}

    @classmethod
    def discover(cls) -> Registry:
        """Scan installed distributions for repmix entry points."""
        plugins, note = discover()
        return cls(plugins, note)

    # ---------------------------------------------------------------- listing
    def entries(self, kind: str | None = None, *, usable_only: bool = False) -> list[ComponentEntry]:
        """Declared components, optionally of one kind and only the usable ones."""
        out = [c for p in self.plugins for c in p.components]
        out += [
            ComponentEntry(k, n, f"{cls_.__module__}:{cls_.__qualname__}", info)
            for (k, n), (cls_, info) in self._temporary.items()
        ]
        if kind is not None:
            out = [c for c in out if c.kind == kind]
        if usable_only:
            out = [c for c in out if c.status == OK]
        return sorted(out, key=lambda c: (c.kind, c.plugin.name, c.name))

    def names(self, kind: str) -> list[str]:
        """Every name a config may use for ``kind`` (short where unique, qualified always)."""
        entries = self.entries(kind, usable_only=True)
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.name] = counts.get(e.name, 0) + 1
        names = [e.name for e in entries if counts[e.name] == 1]
        names += [e.qualified_name for e in entries]
        return sorted(set(names))

    # -------------------------------------------------------------- resolving
    def resolve(self, kind: str, name: str) -> ComponentEntry:
        """Find the entry for ``name`` (``plugin.name`` or a unique short ``name``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        all_of_kind = self.entries(kind)
        matches = [e for e in all_of_kind if e.qualified_name == name]
        if not matches:
            matches = [e for e in all_of_kind if e.name == name]
        usable = [e for e in matches if e.status == OK]
        if len(usable) > 1:
            dists = " and ".join(f"{e.plugin.distribution} ({e.qualified_name})" for e in usable)
            raise ConfigError(
                f"{kind} name {name!r} is ambiguous: provided by {dists}",
                found=name,
                hint="use the qualified name plugin.name",
                suggestion=usable[0].qualified_name,
            )
        if usable:
            return usable[0]
        if matches:
            e = matches[0]
            if e.status == DISABLED:
                raise PluginError(
                    f"{kind} {name!r} comes from plugin {e.plugin.name!r} "
                    f"({e.plugin.distribution} {e.plugin.version}), which is disabled: {e.reason}"
                )
            if e.status == INCOMPATIBLE:
                raise PluginError(
                    f"{kind} {name!r} comes from {e.plugin.distribution} {e.plugin.version}, "
                    f"which is incompatible: it {e.reason}",
                    hint=f"install a version of {e.plugin.distribution} built for this repmix, "
                    f"or a repmix matching {e.plugin.requires_repmix}",
                )
            raise PluginError(
                f"{kind} {name!r} comes from {e.plugin.distribution} {e.plugin.version}, "
                f"which is broken: {e.reason}"
            )
        allowed = self.names(kind)
        if not self.plugins and not self._temporary:
            raise ConfigError(
                f"unknown {kind} {name!r}: no repmix plugins are installed"
                + (f" ({self.note})" if self.note else ""),
                found=name,
                hint=INSTALL_HINT,
            )
        raise ConfigError(f"unknown {kind} {name!r}", found=name, allowed=allowed)

    def load(self, kind: str, name: str) -> type:
        """Import and return the class registered as ``name``."""
        entry = self.resolve(kind, name)
        key = (kind, entry.qualified_name)
        if key in self._loaded:
            return self._loaded[key]
        tmp = self._temporary.get((kind, entry.name))
        if tmp is not None and tmp[1] is entry.plugin:
            return tmp[0]
        module_name, _, attr = entry.target.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # a plugin raising on import must not take repmix down
            entry.plugin.status = BROKEN
            entry.plugin.reason = f"importing {entry.target} failed: {type(exc).__name__}: {exc}"
            raise PluginError(
                f"{kind} {name!r} from {entry.plugin.distribution} {entry.plugin.version} "
                f"is broken: {entry.plugin.reason}"
            ) from exc
        if not isinstance(obj, type):
            raise PluginError(f"entry point {entry.target} of {entry.plugin.distribution} is not a class")
        self._loaded[key] = obj
        return obj

    def check_imports(self) -> None:
        """Import every usable component, marking failures as broken (``plugins list --check``)."""
        for e in self.entries(usable_only=True):
            try:
                self.load(e.kind, e.qualified_name)
            except PluginError:
                pass

    def plugin(self, name: str) -> PluginInfo | None:
        """The plugin called ``name`` (short name or distribution name); the name's owner first."""
        for p in self.plugins:  # owners precede refused claimants (discovery._settle_name_claims)
            if name in (p.name, p.distribution):
                return p
        return None

    # ------------------------------------------------------------ test helper
    @contextmanager
    def temporary(self, kind: str, name: str, cls: type, plugin: str = "test") -> Iterator[type]:
        """Register ``cls`` as ``plugin.name`` for the duration of a ``with`` block (tests only)."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}")
        info = PluginInfo(plugin, f"<temporary {plugin}>", "0", OK)
        key = (kind, name)
        previous = self._temporary.get(key)
        self._temporary[key] = (cls, info)
        self._loaded.pop((kind, f"{plugin}.{name}"), None)
        try:
            yield cls
        finally:
            if previous is None:
                self._temporary.pop(key, None)
            else:
                self._temporary[key] = previous


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, discovered on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry.discover()
        return _registry


def reset_registry() -> None:
    """Forget the discovered registry (after installing a plugin, or in tests)."""
    global _registry
    with _lock:
        _registry = None


@contextmanager
def temporary_component(kind: str, name: str, cls: type, plugin: str = "test") -> Iterator[type]:
    """Register a component class for the duration of a ``with`` block (test-only)."""
    with get_registry().temporary(kind, name, cls, plugin) as c:
        yield c
