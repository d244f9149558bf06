"""Each plugin installs on its own: every module its files import is declared by its pyproject.

A plugin's source may import the standard library, ``repmix`` and what repmix
itself requires (every plugin requires ``repmix>=1,<2``, so those are always
installed: torch, numpy, pydantic, ...), itself and its ``dependencies``; inside
a function (a lazy import for an optional feature) also what its extras
declare. Its tests may import what its extras declare.
Checked statically (every import statement, function-level ones included)
against the installed distributions' top-level modules, so a plugin that
works only because another plugin happened to pull a package in fails here.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def modules_by_distribution() -> dict[str, set[str]]:
    """Canonical distribution name -> the top-level modules it provides (installed distributions)."""
    found: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            found.setdefault(canonical(dist), set()).add(module)
    return found


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, without extras-only ones (``; extra == ...``)."""
    return {
        canonical(re.split(r"[\s\[<>=!~;(]", r.strip(), maxsplit=1)[0]) for r in requirements if "extra ==" not in r
    }


def _guarded(tree: ast.AST) -> set[int]:
    """Ids of import nodes inside ``try:`` blocks that handle ImportError (optional dependencies)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type is not None)
            if "ImportError" in caught or "ModuleNotFoundError" in caught:
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def _module_level(tree: ast.Module) -> set[int]:
    """Ids of import nodes that run on import of the module (not inside a function)."""
    found: set[int] = set()
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        found.add(id(node))
        todo.extend(ast.iter_child_nodes(node))
    return found


def imported_top_level(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Top-level modules ``path`` imports (imports guarded by ``except ImportError`` aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    optional = _guarded(tree)
    eager = _module_level(tree) if module_level_only else None
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in optional or (eager is not None and id(node) not in eager):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def allowed_modules(requirements: set[str]) -> set[str]:
    allowed: set[str] = set()
    for dist in requirements:
        allowed |= modules_by_distribution().get(dist, set())
    return allowed


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda p: p.name)
def test_plugin_imports_only_what_it_declares(plugin: Path) -> None:
    project = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = requirement_names(project.get("dependencies", []))
    if "repmix" in runtime:
        runtime |= requirement_names(md.requires("repmix") or [])
    extras = project.get("optional-dependencies", {})
    everything = runtime | {n for reqs in extras.values() for n in requirement_names(reqs)}
    own = {p.name for p in (plugin / "src").glob("*") if (p / "__init__.py").exists()}
    base = set(sys.stdlib_module_names) | {"repmix", "__future__"} | own
    local_tests = {p.stem for p in (plugin / "tests").glob("*.py")} | {"conftest"}
    problems = []
    for path in sorted(plugin.rglob("*.py")):
        rel = path.relative_to(plugin)
        if rel.parts[0] == "src":
            eager = imported_top_level(path, module_level_only=True) - base - allowed_modules(runtime)
            lazy = imported_top_level(path) - base - allowed_modules(everything)
            missing = {m: "its dependencies (a module-level import)" for m in eager}
            missing.update({m: "its dependencies or extras" for m in lazy})
        else:
            allowed = base | allowed_modules(everything) | local_tests
            missing = {m: "its dependencies or extras" for m in imported_top_level(path) - allowed}
        for module, where in sorted(missing.items()):
            problems.append(f"{plugin.name}/{rel}: imports {module!r}, which no distribution in {where} provides")
    assert not problems, "\n".join(problems)
