"""The README's figures come from the stored results of ``benchmarks/readme_figures.py run``.

The 6-minute main command is not run here: the README block is compared with what the
script's ``render`` writes from ``benchmarks/results/readme_figures.json``, so a README
edited by hand, or results stored without rewriting the README, fail this test.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_figures", REPO / "benchmarks" / "readme_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_figures_equal_the_stored_results() -> None:
    script = _script()
    if not script.RESULTS.is_file():
        import pytest

        pytest.skip("no stored results yet: run python benchmarks/readme_figures.py run")
    results = script.load_results()
    assert results["machine"] and results["wall_seconds"] > 0
    block = script.current_block((REPO / "README.md").read_text(encoding="utf-8"))
    assert block, "README.md lost its readme-figures block"
    assert block == script.render(results), "README figures drifted: python benchmarks/readme_figures.py render"


def test_no_other_measured_figure_in_the_readme_outside_the_block() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    outside = text.replace(_script().current_block(text), "")
    assert not re.search(r"\b\d+ min \d+ s\b|Hits@1 \d|mean rank \d|~\d+(\.\d+)? s\b", outside)
