"""Entry-point discovery: which plugins are installed, enabled and compatible.

Everything here reads distribution metadata only (``importlib.metadata``);
no plugin module and no torch is imported. That keeps ``repmix plugins list``
fast, unlike frameworks that register components by importing every module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

import repmix

#: Component kind -> entry-point group.
GROUPS: dict[str, str] = {
    "tokenizer": "repmix.tokenizers",
    "encoder": "repmix.encoders",
    "pooler": "repmix.poolers",
    "aligner": "repmix.aligners",
    "loss": "repmix.losses",
    "dataset": "repmix.datasets",
    "evaluator": "repmix.evaluators",
    "corruptor": "repmix.corruptors",
    "decoding": "repmix.decoding",
}
KINDS: tuple[str, ...] = tuple(GROUPS)
HOOKS_GROUP = "repmix.hooks"

ENV_DISABLE_AUTOLOAD = "REPMIX_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "REPMIX_PLUGINS"
ENV_DENY = "REPMIX_DISABLED_PLUGINS"

OK, INCOMPATIBLE, BROKEN, DISABLED = "ok", "incompatible", "broken", "disabled"


def plugin_name(distribution: str) -> str:
    """Short plugin name of a distribution: ``repmix-orma`` -> ``orma``."""
    norm = re.sub(r"[-_.]+", "-", distribution).lower()
    return norm[len("repmix-"):] if norm.startswith("repmix-") and norm != "repmix-" else norm


def _env_list(name: str) -> set[str]:
    raw = os.environ.get(name, "")
    return {plugin_name(p.strip()) for p in raw.split(",") if p.strip()}


def autoload_disabled() -> bool:
    """True when ``REPMIX_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    return os.environ.get(ENV_DISABLE_AUTOLOAD, "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class PluginInfo:
    """One installed plugin distribution and its status."""

    name: str
    distribution: str
    version: str
    status: str = OK
    reason: str = ""
    requires_repmix: str = ""
    components: list[ComponentEntry] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)


@dataclass
class ComponentEntry:
    """One component as declared by an entry point (not imported yet)."""

    kind: str
    name: str
    target: str
    plugin: PluginInfo

    @property
    def qualified_name(self) -> str:
        """``plugin.name``, always unambiguous."""
        return f"{self.plugin.name}.{self.name}"

    @property
    def status(self) -> str:
        return self.plugin.status

    @property
    def reason(self) -> str:
        return self.plugin.reason


def check_compatibility(requires: list[str] | None) -> tuple[str, str, str]:
    """Read a distribution's ``Requires-Dist`` lines; return (status, reason, specifier)."""
    current = Version(repmix.__version__)
    for line in requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if plugin_name(req.name) != "repmix" and req.name.lower() != "repmix":
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        spec = str(req.specifier)
        if spec and not req.specifier.contains(current, prereleases=True):
            return (
                INCOMPATIBLE,
                f"requires repmix{spec}, but repmix {current} is installed",
                spec,
            )
        return OK, "", spec
    return OK, "", ""


def discover() -> tuple[list[PluginInfo], str]:
    """Scan entry points. Returns the plugins and a note on environment controls."""
    if autoload_disabled():
        return [], f"plugin autoload is disabled ({ENV_DISABLE_AUTOLOAD} is set)"
    allow, deny = _env_list(ENV_ALLOW), _env_list(ENV_DENY)
    all_eps = metadata.entry_points()
    by_dist: dict[str, PluginInfo] = {}
    group_to_kind = {g: k for k, g in GROUPS.items()}
    for group in (*GROUPS.values(), HOOKS_GROUP):
        for ep in all_eps.select(group=group):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else ep.module.split(".")[0]
            key = plugin_name(dist_name)
            info = by_dist.get(_normalise(dist_name))
            if info is None:
                version = dist.version if dist is not None else "0"
                status, reason, spec = check_compatibility(dist.requires if dist is not None else None)
                if allow and key not in allow:
                    status, reason = DISABLED, f"not in {ENV_ALLOW}={os.environ.get(ENV_ALLOW)}"
                elif key in deny:
                    status, reason = DISABLED, f"listed in {ENV_DENY}"
                info = PluginInfo(key, dist_name, version, status, reason, spec)
                by_dist[_normalise(dist_name)] = info
            if group == HOOKS_GROUP:
                info.hooks.append(ep.value)
                continue
            if not re.fullmatch(r"[\w.]+:[\w.]+", ep.value):
                info.status, info.reason = BROKEN, f"malformed entry point {ep.name} = {ep.value!r}"
            info.components.append(ComponentEntry(group_to_kind[group], ep.name, ep.value, info))
    plugins = _settle_name_claims(list(by_dist.values()))
    note = ""
    if allow:
        note = f"only plugins in {ENV_ALLOW} are enabled"
    if deny:
        note = (note + "; " if note else "") + f"{ENV_DENY} disables {', '.join(sorted(deny))}"
    return plugins, note


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _settle_name_claims(infos: list[PluginInfo]) -> list[PluginInfo]:
    """One owner per plugin name; every other claimant is listed as broken and resolves nothing.

    ``repmix-std`` owns the plugin name ``std``: a distribution named plain
    ``std`` (or anything else normalising to ``std``) cannot take it over, and
    the owner keeps working. Owners come first in the returned list.
    """
    claims: dict[str, list[PluginInfo]] = {}
    for info in infos:
        claims.setdefault(info.name, []).append(info)
    owners: list[PluginInfo] = []
    refused: list[PluginInfo] = []
    for name, claimants in claims.items():
        if len(claimants) == 1:
            owners.append(claimants[0])
            continue
        canonical = [c for c in claimants if _normalise(c.distribution) == f"repmix-{name}"]
        owner = canonical[0] if canonical else sorted(claimants, key=lambda c: c.distribution)[0]
        owners.append(owner)
        for other in claimants:
            if other is owner:
                continue
            other.status, other.reason = BROKEN, (
                f"plugin name {name!r} belongs to {owner.distribution}; {other.distribution} cannot take it over "
                f"(name the distribution repmix-<something else>)"
            )
            refused.append(other)
    return sorted(owners, key=lambda p: p.name) + sorted(refused, key=lambda p: p.distribution)
