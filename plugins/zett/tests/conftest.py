"""Fixtures of the zett tests: target tokenizers trained for the tiny BERT, a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TEXTS = [
    "the man is riding a horse in the park",
    "a woman is eating food with a child",
    "the red car and the blue train are in the city",
    "a dog is running in the park with a ball",
    "the molecule carries an amino group and a methyl group",
    "two children are playing with a small white dog",
    "the benzene ring of the compound carries a chloro group",
    "a man wearing a hard hat is dancing on the street",
] * 3


def write_target(directory: Path, source_dir: str, texts: list[str], vocab_size: int) -> Path:
    """Train a BPE target tokenizer for ``source_dir`` on ``texts``; returns the tokenizer.json."""
    from repmix_zett.targets import train_like_source
    from repmix_zett.vocabulary import load_backend

    tok = train_like_source(texts, load_backend(Path(source_dir), "source"), vocab_size, min_frequency=1)
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    return directory / "tokenizer.json"


@pytest.fixture(scope="session")
def target_writer():  # type: ignore[no-untyped-def]
    """:func:`write_target` (test modules cannot import conftest under --import-mode=importlib)."""
    return write_target


@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    """The tiny corpus :data:`TEXTS`."""
    return list(TEXTS)


@pytest.fixture(scope="session")
def tiny_target(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> str:
    """A 150-token BPE target tokenizer for the tiny BERT (word pieces differ from its vocabulary)."""
    return str(write_target(tmp_path_factory.mktemp("target"), tiny_bert_dir, TEXTS, 150))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A JSONL corpus of title/text rows."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    rows = [{"title": t.split()[1], "text": t + ". " + t.capitalize() + "."} for t in TEXTS]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest on one thread (and spinning threads crawl on a shared, loaded machine)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
