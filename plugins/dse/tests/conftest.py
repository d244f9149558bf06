"""Fixtures of the dse tests: ``tiny_bert_dir`` and ``minilm_dir`` come from repmix's pytest plugin."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "slow: trains all-MiniLM-L6-v2 in a subprocess (about 30 s)")
