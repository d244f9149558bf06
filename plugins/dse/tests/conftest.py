"""Fixtures of the dse tests: ``tiny_bert`` and ``minilm_dir`` come from repmix's pytest plugin."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_bert: Callable[..., str]) -> str:
    """The tiny random BERT of repmix's pytest plugin, 4 layers deep (these tests read its per-layer states)."""
    return tiny_bert(layers=4)


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "slow: trains all-MiniLM-L6-v2 in a subprocess (about 30 s)")
