"""Shared fixtures of the orma plugin tests.

* every test session writes its molecule-graph and data caches to a fresh
  temporary folder (``$REPMIX_CACHE``), never to ``~/.cache``;
* ``chebi20_dir``: ``$REPMIX_SHARED_DATA/chebi20`` or ``<repo>/../shared/data/chebi20``
  (tests that need it skip when it is absent);
* ``tiny_bert_dir`` (a tiny random BERT for text towers) and ``shared_data_dir`` come
  from repmix's pytest plugin.
"""

from __future__ import annotations

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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's cache folder."""
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def chebi20_dir(shared_data_dir: Path) -> Path:
    """The shared ChEBI-20 folder; tests needing it skip when it is absent."""
    folder = shared_data_dir / "chebi20"
    if not (folder / "validation.tsv").is_file():
        pytest.skip(f"ChEBI-20 data not found at {folder} (set REPMIX_SHARED_DATA)")
    return folder


@pytest.fixture
def cache_dir(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty cache folder for one test (as a string, the way YAML gives it)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    yield str(folder)
