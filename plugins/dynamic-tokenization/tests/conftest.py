"""Fixtures of the dynamic-tokenization tests."""

from __future__ import annotations

from pathlib import Path

import pytest


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
