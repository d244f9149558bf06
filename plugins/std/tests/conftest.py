"""Shared fixtures of the std plugin tests.

* ``tiny_bert_dir``, ``shared_data_dir`` and ``minilm_dir`` come from repmix's pytest
  plugin (``repmix.sdk.pytest_plugin``);
* ``minilm_st``: the sentence-transformers reference of the packaged all-MiniLM-L6-v2,
  loaded at most once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers these tests use (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "data: needs the shared data folder (skipped where absent)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def minilm_st(minilm_dir: Path) -> Iterator[Any]:
    """sentence-transformers' model of the packaged MiniLM, on CPU (the reference)."""
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers (the reference)")
    yield st.SentenceTransformer(str(minilm_dir), device="cpu")
