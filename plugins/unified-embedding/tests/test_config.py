"""The shipped config passes `repmix check` (it uses std's cosine, info-nce, pairs and retrieval)."""

from __future__ import annotations

from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "unified-text-smiles.yaml"


def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0
