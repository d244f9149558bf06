"""Code shown in the docs runs, and passes the conformance kit."""

from __future__ import annotations

import re

from core_helpers import REPO

from repmix.sdk.conformance import Case, check_component


def test_writing_a_plugin_example_pooler_passes_the_kit() -> None:
    text = (REPO / "docs" / "writing-a-plugin.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class AttentionPooler" in b)
    namespace: dict[str, object] = {}
    exec(compile(block, "writing-a-plugin.md", "exec"), namespace)
    report = check_component(Case("pooler", namespace["AttentionPooler"], {"normalize": True}))  # type: ignore[arg-type]
    assert all(not v.startswith("expected failure") for v in report.values()), report
    assert report["padding_invariance"] == "passed"
