"""The shipped config passes `repmix check`; a document without sentences is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from repmix.sdk import InputError, Runtime
from repmix.sdk.testing import run_cli
from repmix_base_lcm.components import SentenceEmbeddingTokenizer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base-lcm-scifact.yaml"


def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_bad_documents(tiny_bert_dir: str) -> None:
    tok = SentenceEmbeddingTokenizer(SentenceEmbeddingTokenizer.Config(model=tiny_bert_dir), Runtime())
    with pytest.raises(InputError, match="without any sentence"):
        tok(["ok. Fine.", "   "])
    with pytest.raises(InputError, match="empty batch"):
        tok([])
    batch = tok(["One. Two. Three.", ["a", "b"]])
    assert batch["embeddings"].shape[:2] == (2, 3) and batch["mask"].sum().item() == 5
