"""Fixtures of the dynamic-tokenization tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path (dyntok_lm_helpers.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest on one thread (and spinning threads crawl on a shared, loaded machine)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def mistral_toy() -> str:
    """The toy copy of the Mistral-7B-v0.1 tokenizer (tests/data/make_mistral_toy.py)."""
    return str(Path(__file__).parent / "data" / "mistral-toy" / "tokenizer.json")


#: A tiny corpus of scientific sentences (repeated words, so the BPE learns subwords and merges have work).
LM_SENTENCES = (
    "Vitamin D deficiency is associated with increased risk of fractures.",
    "The ribonucleoprotein particles regulate mRNA stability in neurons.",
    "Deficiency of vitamin B12 causes anaemia and neurological symptoms.",
    "Increased expression of the receptor regulates cell proliferation.",
    "Stability of the mRNA depends on regulatory proteins and microRNAs.",
    "Patients with fractures received vitamin supplements for six months.",
    "Proliferation of tumour cells was reduced by the inhibitor.",
    "The receptor binds the ligand with high affinity in vitro.",
)


@pytest.fixture(scope="session")
def lm_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jsonl corpus (std.text-corpus: title + text) of 48 documents built from :data:`LM_SENTENCES`."""
    import json

    path = tmp_path_factory.mktemp("lm-corpus") / "corpus.jsonl"
    lines = []
    for i in range(48):
        a, b = LM_SENTENCES[i % 8], LM_SENTENCES[(3 * i + 1) % 8]
        lines.append(json.dumps({"_id": f"d{i}", "title": f"Study {i}", "text": f"{a} {b}"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_bpe(tmp_path_factory: pytest.TempPathFactory, lm_corpus: Path) -> str:
    """The tokenizer.json that std.lm-tokenizer trains (BPE 120, Metaspace, [BOS] $A [EOS]) on the tiny corpus."""
    import os
    import shutil

    from repmix.sdk import ConfigError, LocatedConfig, build_component

    try:
        from repmix.sdk import load_component_class

        load_component_class("tokenizer", "std.lm-tokenizer")
    except ConfigError:
        pytest.skip("the LM tests use std's lm-tokenizer (pip install repmix-std)")
    block = {"type": "std.lm-tokenizer", "algorithm": "bpe", "vocab_size": 120, "max_length": 64,
             "train_on": {"type": "std.text-corpus", "path": str(lm_corpus), "split": "train"}}
    folder = tmp_path_factory.mktemp("tiny-bpe")
    previous = os.environ.get("REPMIX_CACHE")
    os.environ["REPMIX_CACHE"] = str(folder / "cache")  # std caches what it trains: keep it out of ~/.cache
    try:
        tok = build_component(LocatedConfig({}), "tokenizer", block, ("tokenizer",))
    finally:
        if previous is None:
            os.environ.pop("REPMIX_CACHE", None)
        else:
            os.environ["REPMIX_CACHE"] = previous
    path = folder / "tokenizer.json"
    shutil.copy(tok.saved_files()["file"], path)
    return str(path)
