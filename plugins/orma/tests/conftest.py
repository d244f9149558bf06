"""Shared fixtures of the orma plugin tests.

* every test session writes its molecule-graph and data caches to a fresh
  temporary folder (``$REPMIX_CACHE``), never to ``~/.cache``;
* ``chebi20_dir``: ``$REPMIX_SHARED_DATA/chebi20`` or ``<repo>/../shared/data/chebi20``
  (tests that need it skip when it is absent);
* ``tiny_hf_model_dir``: a tiny random BERT (2 layers, hidden 32) with a small
  WordPiece vocabulary, for text towers in end-to-end tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from repmix.sdk.testing import write_tiny_bert

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


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of a tiny random BERT + tokenizer written once per session."""
    return str(write_tiny_bert(
        tmp_path_factory.mktemp("tiny-bert"), words=TINY_WORDS, chars=TINY_CHARS, layers=2, max_positions=512
    ))


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
