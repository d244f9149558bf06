"""The README's commands are what CI runs, and its example configs are valid."""

from __future__ import annotations

import re

from core_helpers import REPO


def block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    section = re.search(rf"<!-- {marker}:start -->(.*?)<!-- {marker}:end -->", text, re.S)
    assert section, marker
    code = re.search(r"```bash\n(.*?)\n```", section.group(1), re.S)
    assert code, marker
    return code.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == block("test-command")


def test_main_command_uses_only_files_in_the_repository() -> None:
    main = block("main-command")
    for path in re.findall(r"(examples/\S+)", main):
        assert (REPO / path).exists(), path
    assert "shared" not in main
