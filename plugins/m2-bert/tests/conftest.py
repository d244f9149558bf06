"""Fixtures of the m2-bert tests: a tiny BEIR directory (corpus, queries, train qrels)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

DOCS = {
    "d1": ("Cats", "cats chase mice and cats sleep"),
    "d2": ("Dogs", "dogs chase cats in the garden"),
    "d3": ("Mice", "mice eat cheese"),
    "d4": ("Birds", "birds sing songs in the morning garden"),
    "d5": ("Fish", "fish swim"),
    "d6": ("Cheese", "cheese is made from milk and mice love cheese"),
}
QUERIES = {"q1": "do cats chase mice", "q2": "what do mice eat", "q3": "birds in the garden", "q4": "fish and milk"}
QRELS = [("q1", "d1"), ("q2", "d3"), ("q2", "d6"), ("q3", "d4"), ("q4", "d5")]


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items()), encoding="utf-8"
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": x}) + "\n" for k, x in QUERIES.items()), encoding="utf-8"
    )
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS), encoding="utf-8"
    )
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> SimpleNamespace:
    """The tiny BEIR directory (``root``) and its contents (``docs``, ``queries``, ``qrels``)."""
    return SimpleNamespace(root=write_beir(tmp_path / "beir"), docs=DOCS, queries=QUERIES, qrels=QRELS)
