"""Fixtures of the binary-pv tests: a tiny random BERT (hidden 32) written once per session."""

from __future__ import annotations

import os

import pytest
from repmix.sdk.testing import write_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny random BERT (its vocabulary: 5 special tokens, then words and characters)."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), layers=2))
