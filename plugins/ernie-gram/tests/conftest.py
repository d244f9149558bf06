"""Shared fixtures of the ernie-gram tests: std's byte tokenizer (helpers live in ernie_gram_testing.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def tokenizer() -> Any:
    """std's byte-level LM tokenizer (261 ids; [PAD] 256, [BOS] 258, [EOS] 259, [MASK] 260)."""
    pytest.importorskip("repmix_std", reason="the tests use std's lm-tokenizer")
    from repmix.sdk import Runtime, load_component_class

    cls = load_component_class("tokenizer", "std.lm-tokenizer")
    return cls(cls.Config(algorithm="bytes", max_length=96), Runtime())
