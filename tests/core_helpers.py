"""Helpers shared by the core tests: fake plugin distributions and CLI subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent


def write_distribution(
    root: Path,
    name: str,
    version: str = "1.0.0",
    requires: list[str] | None = None,
    entry_points: dict[str, dict[str, str]] | None = None,
    modules: dict[str, str] | None = None,
) -> Path:
    """Write an installed-looking distribution (dist-info + modules) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires or []]
    (dist_info / "METADATA").write_text("\n".join(meta) + "\n")
    lines = []
    for group, eps in (entry_points or {}).items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines))
    for mod, source in (modules or {}).items():
        (root / f"{mod}.py").write_text(textwrap.dedent(source))
    return root


def toy_entry_points() -> dict[str, dict[str, str]]:
    """Entry points of the toy plugin (tests/toys.py)."""
    from toys import GROUP_OF_KIND, TOYS

    eps: dict[str, dict[str, str]] = {}
    for (kind, name), cls in TOYS.items():
        eps.setdefault(GROUP_OF_KIND[kind], {})[name] = f"toys:{cls.__name__}"
    return eps


def subprocess_env(*extra_paths: Path, **env: str) -> dict[str, str]:
    """Environment for running ``python -m repmix`` with extra import paths."""
    out = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(TESTS_DIR)]
    if out.get("PYTHONPATH"):
        paths.append(out["PYTHONPATH"])
    out["PYTHONPATH"] = os.pathsep.join(paths)
    out["HF_HUB_OFFLINE"] = "1"
    out.update(env)
    return out


def run_cli(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m repmix ARGS`` in a subprocess; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "repmix", *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        cwd=cwd,
        timeout=300,
    )
