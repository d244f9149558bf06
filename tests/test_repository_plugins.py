"""The plugins in this repository keep to the plugin contract together."""

from __future__ import annotations

import tomllib
from collections import defaultdict

import pytest
from core_helpers import REPO

PYPROJECTS = sorted((REPO / "plugins").glob("*/pyproject.toml"))


def entry_points(path) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    data = tomllib.loads(path.read_text())
    return {g: eps for g, eps in data["project"].get("entry-points", {}).items() if g.startswith("repmix.")}


def test_short_names_do_not_clash_between_our_plugins() -> None:
    """A clash would make every config using the short name ambiguous once both are installed."""
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in PYPROJECTS:
        for group, eps in entry_points(path).items():
            for name in eps:
                owners[(group, name)].append(path.parent.name)
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert not clashes, clashes


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: p.parent.name)
def test_plugin_packaging(path) -> None:  # type: ignore[no-untyped-def]
    data = tomllib.loads(path.read_text())
    project = data["project"]
    assert project["name"] == f"repmix-{path.parent.name}"
    assert any(dep.replace(" ", "").startswith("repmix>=1,<2") for dep in project["dependencies"]), project["dependencies"]
    assert (path.parent / "README.md").exists()
    assert (REPO / "docs" / "plugins" / f"{path.parent.name}.md").exists()
    tests = list((path.parent / "tests").glob("test_*.py"))
    # The conformance kit covers the model component kinds; a plugin of datasets/evaluators only has none to run.
    kit_groups = {"repmix.tokenizers", "repmix.encoders", "repmix.poolers", "repmix.aligners", "repmix.losses"}
    if kit_groups & set(entry_points(path)):
        assert any("conformance" in t.name for t in tests), "no conformance test"
    assert any("faithful" in t.read_text().lower() or "reference" in t.read_text().lower() for t in tests)
