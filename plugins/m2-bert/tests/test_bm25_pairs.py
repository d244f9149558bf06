"""BM25 against its formula computed term by term, and ``m2-bert.bm25-pairs`` on a tiny BEIR directory.

Reference: the Okapi BM25 formula (Lucene's idf) evaluated with plain Python loops per (query,
document) pair; tolerance 1e-12 (float64).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from repmix.sdk import InputError, LocatedConfig, build_component
from repmix_m2_bert.bm25 import BM25, bm25_tokens


def bm25_by_hand(query: str, docs: list[str], k1: float, b: float) -> list[float]:
    toks = [bm25_tokens(d) for d in docs]
    avgdl = sum(len(t) for t in toks) / len(toks)
    out = []
    for t in toks:
        s = 0.0
        for term in bm25_tokens(query):
            df = sum(1 for u in toks if term in u)
            if df == 0:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = t.count(term)
            if tf == 0:
                continue
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl))
        out.append(s)
    return out


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (0.9, 0.4), (2.0, 0.0), (0.0, 1.0)])
def test_bm25_equals_the_formula(k1: float, b: float, tiny_beir) -> None:  # type: ignore[no-untyped-def]
    docs = [f"{t} {x}" for t, x in tiny_beir.docs.values()]
    index = BM25(docs, k1=k1, b=b)
    for q in [*tiny_beir.queries.values(), "cheese cheese mice", "nothing matches here", ""]:
        np.testing.assert_allclose(index.scores(q), bm25_by_hand(q, docs, k1, b), atol=1e-12, rtol=0)


def test_bm25_top_is_best_first_ties_by_index() -> None:
    index = BM25(["a b", "a b", "c", "a"])
    assert index.top("c", 4) == [2, 0, 1, 3]  # the match, then zeros in corpus order
    assert index.top("a b", 2) == [0, 1]
    assert index.top("a", 0) == []
    with pytest.raises(ValueError, match="k1 >= 0"):
        BM25(["x"], b=1.5)


def _dataset(block: dict):  # type: ignore[no-untyped-def]
    full = {"type": "m2-bert.bm25-pairs", **block}
    return build_component(LocatedConfig({"data": full}), "dataset", full, ("data",))


def test_pairs_are_positives_then_top_bm25_non_relevant(tiny_beir) -> None:  # type: ignore[no-untyped-def]
    root, DOCS, QUERIES, QRELS = tiny_beir.root, tiny_beir.docs, tiny_beir.queries, tiny_beir.qrels
    ds = _dataset({"negatives": 2, "beir": {"type": "std.beir", "path": str(root)}})
    ex = ds.load()
    docs = [f"{t} {x}" for t, x in DOCS.values()]
    ids = list(DOCS)
    index = BM25(docs)
    expected_rows = []
    relevant = {}
    for q, d in QRELS:
        relevant.setdefault(q, []).append(d)
    for q, text in QUERIES.items():
        expected_rows += [(q, d, 1.0) for d in relevant[q]]
        ranked = [ids[i] for i in index.top(text, len(ids))]
        expected_rows += [(q, d, 0.0) for d in [d for d in ranked if d not in relevant[q]][:2]]
    assert [tuple(i.split("\t")) + (t,) for i, t in zip(ex.ids, ex.targets)] == expected_rows
    assert ex.columns["query"] == [QUERIES[q] for q, _, _ in expected_rows]
    assert ex.columns["document"] == [docs[ids.index(d)] for _, d, _ in expected_rows]
    assert ex.extras["labels"] == ex.targets and "corpus_texts" in ex.extras
    skipped = _dataset({"negatives": 1, "skip": 1, "beir": {"type": "std.beir", "path": str(root)}}).load()
    negatives = [i for i, t in zip(ex.ids, ex.targets) if t == 0.0]
    assert [i for i, t in zip(skipped.ids, skipped.targets) if t == 0.0] == negatives[1::2]


def test_holdout_splits_are_shared_with_std_beir(tiny_beir) -> None:  # type: ignore[no-untyped-def]
    root, QUERIES = tiny_beir.root, tiny_beir.queries
    beir = {"type": "std.beir", "path": str(root), "holdout": 2, "holdout_split": "test"}
    ds = _dataset({"negatives": 1, "beir": beir})
    train_q = {i.split("\t")[0] for i in ds.load().ids}
    test_q = {i.split("\t")[0] for i in ds.load("test").ids}
    assert len(test_q) == 2 and not train_q & test_q and train_q | test_q == set(QUERIES)
    evaluated = _dataset({"negatives": 0, "beir": beir}).inner.load("test").extras["query_ids"]
    assert set(evaluated) == test_q


def test_nested_data_without_a_corpus_is_one_clear_error(tmp_path: Path) -> None:
    from repmix.sdk.testing import write_tiny_sts

    write_tiny_sts(tmp_path)
    ds = _dataset({"beir": {"type": "std.sts", "path": str(tmp_path)}})
    with pytest.raises(InputError, match="provides no corpus_ids"):
        ds.load()
