"""Fixtures of the dupmae tests: ``tiny_bert`` and ``shared_data_dir`` come from repmix's pytest plugin."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_bert: Callable[..., str]) -> str:
    """The tiny random BERT of repmix's pytest plugin, 3 layers deep (these tests read its per-layer states)."""
    return tiny_bert(layers=3)


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests."""
    config.addinivalue_line("markers", "slow: loads all-MiniLM-L6-v2 or trains a few steps")
    config.addinivalue_line("markers", "data: needs the shared STS-B folder")
