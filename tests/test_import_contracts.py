"""The architecture's import arrows, checked by import-linter and by a scan of plugin test files.

The rooms (docs/architecture.md): ``repmix.core`` is the kernel and knows no
engine, CLI, SDK, integration or plugin; ``repmix.registry`` needs only the
kernel's errors; the engine knows no CLI and no plugin; every plugin imports
``repmix.sdk`` and itself only, and no plugin imports another. The contracts
are generated from the plugin folders present, so a new plugin is covered the
day it is added.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
#: Kernel modules the registry must not import (it may import repmix.core.errors only).
KERNEL_BEYOND_ERRORS = (
    "repmix.core.artifacts",
    "repmix.core.assembly",
    "repmix.core.components",
    "repmix.core.config",
    "repmix.core.dataflow",
    "repmix.core.loading",
    "repmix.core.model",
    "repmix.core.spec",
)
OUTER_ROOMS = ("repmix.engine", "repmix.cli", "repmix.sdk", "repmix.integrations")


def plugin_packages() -> dict[str, Path]:
    """Import name -> plugin folder, for every plugins/<name>/src/<package>/."""
    found: dict[str, Path] = {}
    for init in sorted(PLUGINS.glob("*/src/*/__init__.py")):
        found[init.parent.name] = init.parents[2]
    return found


def contracts_ini(packages: list[str]) -> str:
    """The import-linter configuration for the installed ``packages`` (plugin import names)."""
    plugins = "\n".join(f"    {p}" for p in packages)
    lines = [
        "[importlinter]",
        "root_packages =",
        "    repmix",
        plugins,
        "exclude_type_checking_imports = True",
        "",
        "[importlinter:contract:kernel]",
        "name = The kernel (repmix.core) knows no engine, CLI, SDK, integration or plugin",
        "type = forbidden",
        "source_modules = repmix.core",
        "forbidden_modules =",
        *[f"    {m}" for m in OUTER_ROOMS],
        plugins,
        "",
        "[importlinter:contract:registry]",
        "name = The registry imports only the kernel's errors",
        "type = forbidden",
        "source_modules = repmix.registry",
        "forbidden_modules =",
        *[f"    {m}" for m in (*KERNEL_BEYOND_ERRORS, *OUTER_ROOMS)],
        plugins,
        "",
        "[importlinter:contract:engine]",
        "name = The engine knows no CLI, SDK, integration or plugin",
        "type = forbidden",
        "source_modules = repmix.engine",
        "forbidden_modules =",
        "    repmix.cli",
        "    repmix.sdk",
        "    repmix.integrations",
        plugins,
        "",
        "[importlinter:contract:sdk]",
        "name = The SDK knows no plugin and drives the CLI only from its test helpers",
        "type = forbidden",
        "source_modules = repmix.sdk",
        "forbidden_modules =",
        "    repmix.cli",
        "    repmix.integrations",
        plugins,
        "ignore_imports =",
        "    repmix.sdk.testing -> repmix.cli.main",
        "unmatched_ignore_imports_alerting = none",
        "",
        "[importlinter:contract:integrations]",
        "name = Integrations know no plugin",
        "type = forbidden",
        "source_modules = repmix.integrations",
        "forbidden_modules =",
        plugins,
        "",
    ]
    if packages:
        lines += [
            "[importlinter:contract:plugins-use-the-sdk]",
            "name = Plugins import repmix.sdk only",
            "type = forbidden",
            "source_modules =",
            plugins,
            "forbidden_modules =",
            "    repmix.core",
            "    repmix.engine",
            "    repmix.cli",
            "    repmix.registry",
            "    repmix.integrations",
            "allow_indirect_imports = True",
            "",
        ]
    if len(packages) > 1:
        lines += [
            "[importlinter:contract:plugins-independent]",
            "name = No plugin imports another",
            "type = independence",
            "modules =",
            plugins,
            "",
        ]
    return "\n".join(lines)


def test_import_contracts_hold(tmp_path: Path) -> None:
    """import-linter on the installed repmix and every installed plugin of this repository."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (it is in the [test] extra)")
    installed = sorted(name for name in plugin_packages() if importlib.util.find_spec(name) is not None)
    config = tmp_path / "contracts.ini"
    config.write_text(contracts_ini(installed), encoding="utf-8")
    result = subprocess.run(
        [lint, str(config), "--no-cache"], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Contracts: " in result.stdout and " 0 broken" in result.stdout, result.stdout


def repmix_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path`` (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(plugin_packages()))
def test_plugin_files_import_only_the_sdk_and_themselves(package: str) -> None:
    """Source and tests alike: the only repmix import is repmix.sdk; no other plugin is imported."""
    folder = plugin_packages()[package]
    others = set(plugin_packages()) - {package}
    problems = []
    for path in sorted(folder.rglob("*.py")):
        for line, module in repmix_imports(path):
            top = module.split(".")[0]
            wrong_room = top == "repmix" and module != "repmix.sdk" and not module.startswith("repmix.sdk.")
            if wrong_room or top in others:
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert not problems, "plugins import only repmix.sdk and themselves:\n" + "\n".join(problems)
