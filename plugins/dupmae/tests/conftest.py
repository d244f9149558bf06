"""Fixtures of the dupmae tests.

* ``tiny_bert_dir``: a tiny random BERT (3 layers, hidden 32, 4 heads) with a small
  WordPiece vocabulary, written once per session with ``save_pretrained``;
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


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests."""
    config.addinivalue_line("markers", "slow: loads all-MiniLM-L6-v2 or trains a few steps")
    config.addinivalue_line("markers", "data: needs the shared STS-B folder")
