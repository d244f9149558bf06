"""A tiny causal LM (std.hf-lm, GPT-2, bytes) trained for a few seconds on repetitive text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recycling_helpers import tiny_config, train_tiny


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(model, tokenizer, encoder) of a tiny GPT-2 trained on repetitive text."""
    from repmix.sdk import build_model, load_config, plan_model

    tmp = tmp_path_factory.mktemp("tiny-lm")
    model = train_tiny(build_model(plan_model(load_config(tiny_config(tmp)))))
    tower = model.tower("text")
    return model, tower.tokenizer, tower.encoder
