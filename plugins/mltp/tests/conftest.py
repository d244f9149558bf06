"""Fixtures of the mltp tests: ``tiny_bert`` comes from repmix's pytest plugin."""

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
