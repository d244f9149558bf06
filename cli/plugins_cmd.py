"""``repmix plugins list`` and ``repmix plugins show``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from repmix.core.errors import PluginError, did_you_mean
from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plugins`` command group (a ``repmix_add_commands`` hook, like any plugin's)."""
    sub = subparsers
    p = sub.add_parser("plugins", help="list installed plugins and show components",
                       description="Inspect installed repmix plugins and their components.")
    psub = p.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    ls = psub.add_parser(
        "list",
        help="list plugins and their components (reads metadata only, imports nothing)",
        description="List installed plugin distributions, their status and components. "
        "Reads entry-point metadata only; --check also imports every component to find broken ones.",
    )
    ls.add_argument("--json", action="store_true", help="print machine-readable JSON")
    ls.add_argument("--check", action="store_true", help="import every component and report broken ones")
    ls.set_defaults(func=cmd_list)
    show = psub.add_parser(
        "show",
        help="show a component's config schema, defaults, citation and distribution",
        description="Show a component (name or plugin.name) or a plugin (its name or distribution).",
    )
    show.add_argument("name", help="component name (e.g. mean, std.mean) or plugin name (e.g. std)")
    show.add_argument("--json", action="store_true", help="print machine-readable JSON")
    show.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _plugin_dict(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "status": info.status,
        "reason": info.reason,
        "requires_repmix": info.requires_repmix,
        "components": [
            {"kind": c.kind, "name": c.name, "qualified_name": c.qualified_name, "target": c.target}
            for c in info.components
        ],
        "hooks": list(info.hooks),
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Print installed plugins; exit 0 even when none are installed.

    With ``--check`` the exit status is 1 when any plugin is broken or
    incompatible (disabled ones are not failures), so CI can rely on it.
    """
    from repmix.registry.registry import INSTALL_HINT, get_registry

    registry = get_registry()
    if args.check:
        registry.check_imports()
    plugins = registry.plugins
    failing = [p for p in plugins if p.status in ("broken", "incompatible")] if args.check else []
    code = 1 if failing else 0
    if args.json:
        print(json.dumps({"note": registry.note, "plugins": [_plugin_dict(p) for p in plugins]}, indent=2))
        return code
    if not plugins:
        print("No repmix plugins are installed" + (f" ({registry.note})." if registry.note else "."))
        print(INSTALL_HINT)
        return 0
    for info in plugins:
        status = info.status if info.status == "ok" else f"{info.status.upper()}: {info.reason}"
        print(f"{info.name}  ({info.distribution} {info.version})  [{status}]")
        by_kind: dict[str, list[str]] = {}
        for c in info.components:
            by_kind.setdefault(c.kind, []).append(c.name)
        for kind, names in by_kind.items():
            plural = "losses" if kind == "loss" else kind + "s"
            print(f"  {plural + ':':<12} {', '.join(names)}")
        if info.hooks:
            print(f"  {'hooks:':<12} {', '.join(info.hooks)}")
    if registry.note:
        print(f"note: {registry.note}")
    if failing:
        import sys

        names = ", ".join(f"{p.distribution} ({p.status})" for p in failing)
        print(f"error: {len(failing)} plugin(s) cannot be used: {names}", file=sys.stderr)
    return code


def _schema_rows(config_cls: Any) -> list[dict[str, Any]]:
    from pydantic_core import PydanticUndefined

    rows = []
    for name, field in config_cls.model_fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        if field.default is PydanticUndefined and field.default_factory is None:
            default: Any = "(required)"
        elif field.default_factory is not None:
            default = field.default_factory()
        else:
            default = field.default
        rows.append({"key": name, "type": annotation, "default": default, "description": field.description or ""})
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    """Describe a component (schema, defaults, citation) or a plugin."""
    from repmix.core.spec import COMMON_KEYS
    from repmix.registry.registry import get_registry

    registry = get_registry()
    name = args.name
    entries = [e for e in registry.entries() if name in (e.name, e.qualified_name)]
    if not entries:
        info = registry.plugin(name)
        if info is not None:
            data = _plugin_dict(info)
            if args.json:
                print(json.dumps(data, indent=2))
            else:
                print(f"{info.name}  ({info.distribution} {info.version})  status: {info.status} {info.reason}")
                if info.requires_repmix:
                    print(f"requires repmix{info.requires_repmix}")
                for c in info.components:
                    print(f"  {c.kind:<10} {c.qualified_name:<32} {c.target}")
            return 0
        known = [e.qualified_name for e in registry.entries()] + [e.name for e in registry.entries()]
        known += [p.name for p in registry.plugins]
        suggestion = did_you_mean(name, known)
        raise PluginError(
            f"no component or plugin called {name!r}",
            hint=(f"did you mean {suggestion!r}? " if suggestion else "") + "see 'repmix plugins list'",
        )
    out = []
    for e in entries:
        cls = registry.load(e.kind, e.qualified_name)
        rows = _schema_rows(cls.Config)
        out.append({
            "kind": e.kind,
            "name": e.qualified_name,
            "distribution": e.plugin.distribution,
            "version": e.plugin.version,
            "class": e.target,
            "citation": getattr(cls, "citation", ""),
            "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
            "config": rows,
        })
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for i, d in enumerate(out):
        if i:
            print()
        print(f"{d['kind']} {d['name']}  ({d['distribution']} {d['version']}, {d['class']})")
        if d["doc"]:
            print(f"  {' '.join(d['doc'].split())}")
        print("  config:")
        if not d["config"]:
            print("    (no parameters)")
        width = max([len(r["key"]) for r in d["config"]] + [4])
        for r in d["config"]:
            print(f"    {r['key']:<{width}}  {r['type']:<14} default: {r['default']!r}")
            if r["description"]:
                print(f"    {'':<{width}}  {r['description']}")
        print(f"  common keys: {', '.join(COMMON_KEYS)}")
        print(f"  citation: {d['citation'] or '(none given)'}")
    return 0
