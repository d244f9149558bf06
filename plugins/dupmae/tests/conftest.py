"""Fixtures of the dupmae tests: ``tiny_bert_dir`` and ``shared_data_dir`` come from repmix's pytest plugin."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests."""
    config.addinivalue_line("markers", "slow: loads all-MiniLM-L6-v2 or trains a few steps")
    config.addinivalue_line("markers", "data: needs the shared STS-B folder")
