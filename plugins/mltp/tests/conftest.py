"""Fixtures of the mltp tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random BERT (3 layers, hidden 32) and WordPiece tokenizer, written once per session."""
    import json

    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory = tmp_path_factory.mktemp("tiny-bert")
    words = ["the", "a", "is", "of", "man", "woman", "dog", "cat", "car", "horse", "riding", "eating", "red", "blue", "big", "small", "hello", "world"]
    chars = list("abcdefghijklmnopqrstuvwxyz.,!?")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars, *(f"##{c}" for c in chars)]
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 128}), encoding="utf-8"
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        BertModel(config).save_pretrained(str(directory))
    finally:
        torch.random.set_rng_state(state)
    return str(directory)
