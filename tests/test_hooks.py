"""pluggy hooks: documented, called, and able to extend the CLI."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from core_helpers import REPO, run_cli, subprocess_env
from toys import TOY_CONFIG

from repmix.registry.hooks import RepmixHookSpecs, get_plugin_manager, hookimpl

HOOK_PLUGIN = {
    "toy_hooks": '''
        from repmix.registry.hooks import hookimpl

        def _hello(args):
            print(f"hello {args.who}")
            return 0

        @hookimpl
        def repmix_add_commands(subparsers):
            p = subparsers.add_parser("hello", help="say hello (from a plugin hook)")
            p.add_argument("who")
            p.set_defaults(func=_hello)
    '''
}


def hookspec_names() -> list[str]:
    return [n for n, _ in inspect.getmembers(RepmixHookSpecs, inspect.isfunction) if n.startswith("repmix_")]


def test_every_hook_is_documented() -> None:
    doc = (REPO / "docs" / "hooks.md").read_text()
    documented = set(re.findall(r"^###\s+`?(repmix_\w+)", doc, flags=re.M))
    specs = set(hookspec_names())
    assert specs, "no hookspecs found"
    assert specs <= documented, f"undocumented hooks: {sorted(specs - documented)}"
    assert documented <= specs, f"documented hooks that do not exist: {sorted(documented - specs)}"
    for name in specs:
        params = [p for p in inspect.signature(getattr(RepmixHookSpecs, name)).parameters if p != "self"]
        section = doc.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        for param in params:
            assert f"`{param}`" in section, f"{name}: parameter {param!r} undocumented"


def test_build_finished_is_called(toy_plugin: Path) -> None:
    from repmix.core.assembly import build_model, plan_model
    from repmix.core.config import LocatedConfig, parse_yaml

    seen: list[object] = []

    class Recorder:
        @hookimpl
        def repmix_build_finished(self, model: object, config: dict) -> None:  # type: ignore[type-arg]
            seen.append((model, config))

    pm = get_plugin_manager()
    pm.register(Recorder())
    model = build_model(plan_model(LocatedConfig(*parse_yaml(TOY_CONFIG, "t.yaml"), "t.yaml")))
    assert len(seen) == 1 and seen[0][0] is model and "model" in seen[0][1]  # type: ignore[index]


def test_plugin_adds_a_cli_command(plugin_dir) -> None:  # type: ignore[no-untyped-def]
    site = plugin_dir("repmix-hello", requires=["repmix>=1"], entry_points={"repmix.hooks": {"hello": "toy_hooks"}},
                      modules=HOOK_PLUGIN)
    res = run_cli(["hello", "world"], env=subprocess_env(site))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello world"
    helped = run_cli(["--help"], env=subprocess_env(site))
    assert "hello" in helped.stdout
    listed = run_cli(["plugins", "list"], env=subprocess_env(site))
    assert "hooks:" in listed.stdout and "toy_hooks" in listed.stdout


def test_broken_hook_module_is_reported_not_fatal(plugin_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = plugin_dir("repmix-badhooks", requires=["repmix>=1"], entry_points={"repmix.hooks": {"bad": "bad_hooks"}},
                      modules={"bad_hooks": "raise ImportError('no such thing')\n"})
    res = run_cli(["--help"], env=subprocess_env(site))
    assert res.returncode == 0
    assert "could not be loaded" in res.stderr and "no such thing" in res.stderr
