"""Fixtures of the xtr tests: ``tiny_hf_model_dir``, a tiny random BERT (2 layers, hidden 32)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ["the", "a", "of", "and", "is", "are", "query", "document", "passage", "answer", "question", "model", "data", "test", "about", "molecule", "word"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-()")


def write_tiny_bert(directory: Path) -> Path:
    """A seeded random ``BertModel`` and its WordPiece tokenizer, written with ``save_pretrained``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *CHARS, *(f"##{c}" for c in CHARS)]
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        BertModel(config).save_pretrained(str(directory))
    finally:
        torch.random.set_rng_state(state)
    return directory


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny BERT, written once per session."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))
