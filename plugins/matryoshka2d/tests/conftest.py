"""Fixtures of the matryoshka2d tests.

``tiny_bert``, ``minilm_dir`` and ``shared_data_dir`` come from repmix's pytest plugin;
``stsb_dir`` is the shared STS-B folder (skips where absent).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_bert: Callable[..., str]) -> str:
    """The tiny random BERT of repmix's pytest plugin, 3 layers deep (these tests read its per-layer states)."""
    return tiny_bert(layers=3)


@pytest.fixture(scope="session")
def stsb_dir(shared_data_dir: Path) -> Path:
    """The shared STS-B folder (``<shared data>/stsb``)."""
    path = shared_data_dir / "stsb"
    if not (path / "dev.tsv").is_file():
        pytest.skip(f"STS-B not found at {path}")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests."""
    config.addinivalue_line("markers", "slow: loads all-MiniLM-L6-v2 or trains a few steps")
    config.addinivalue_line("markers", "data: needs the shared STS-B folder")
