"""Shared fixtures of the orma plugin tests.

* every test session writes its molecule-graph and data caches to a fresh
  temporary folder (``$REPMIX_CACHE``), never to ``~/.cache``;
* ``chebi20_dir``: ``$REPMIX_SHARED_DATA/chebi20`` or ``<repo>/../shared/data/chebi20``
  (tests that need it skip when it is absent);
* ``tiny_hf_model_dir``: a tiny random BERT (2 layers, hidden 32) with a small
  WordPiece vocabulary, for text towers in end-to-end tests.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_CACHE = tempfile.mkdtemp(prefix="repmix-orma-tests-")
os.environ["REPMIX_CACHE"] = _CACHE

TINY_WORDS = [
    *"the a an of is it and at position group molecule carrying member with as in to by from has role".split(),
    *"benzene pyridine furan thiophene naphthalene indole quinoline cyclohexane piperidine".split(),
    *"chloro bromo fluoro iodo nitro methyl ethyl methoxy hydroxy amino carboxy cyano acid acetyl".split(),
    *"compound organochlorine amine ether nitrile aldehyde ketone ester alcohol thiol class".split(),
]
TINY_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()[]")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's cache folder."""
    shutil.rmtree(_CACHE, ignore_errors=True)


def write_tiny_bert(directory: Path, *, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Write a tiny random ``BertModel`` and its WordPiece tokenizer to ``directory``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab: list[str] = []
    for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS, *TINY_CHARS, *(f"##{c}" for c in TINY_CHARS)]:
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
        max_position_embeddings=512,
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
    """Path (str) of a tiny random BERT + tokenizer written once per session."""
    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def chebi20_dir() -> Path:
    """The shared ChEBI-20 folder; tests needing it skip when it is absent."""
    default = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    folder = Path(os.environ.get("REPMIX_SHARED_DATA", str(default))).resolve() / "chebi20"
    if not (folder / "validation.tsv").is_file():
        pytest.skip(f"ChEBI-20 data not found at {folder} (set REPMIX_SHARED_DATA)")
    return folder


@pytest.fixture
def cache_dir(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty cache folder for one test (as a string, the way YAML gives it)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    yield str(folder)
