"""Okapi BM25 over an in-memory corpus: the "strong negatives" of M2-BERT's retrieval fine-tuning.

For a query q and a document d of length |d| (in tokens), with N documents of mean length avgdl::

    score(q, d) = Σ_{t ∈ q} idf(t) · tf(t, d) · (k1 + 1) / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl))
    idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))                 (Lucene's non-negative idf)

A query term repeated n times counts n times. Tokens are the lowercased runs of letters and
digits (``[a-z0-9]+`` after lowercasing; no stemming, no stop words), so scores are those of
BM25 on that tokenisation, not Anserini's or Elasticsearch's analysers. Defaults k1 = 1.2,
b = 0.75 (Lucene's and Elasticsearch's, which BEIR's BM25 baseline ran).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+")


def bm25_tokens(text: str) -> list[str]:
    """Lowercased runs of ASCII letters and digits."""
    return _TOKEN.findall(text.lower())


class BM25:
    """BM25 scores of a query against every document (posting lists, one numpy pass per query term)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = float(k1), float(b)
        self.num_docs = len(documents)
        counts = [Counter(bm25_tokens(d)) for d in documents]
        self.lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        self.avgdl = float(self.lengths.mean()) if self.num_docs and self.lengths.sum() > 0 else 1.0
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, c in enumerate(counts):
            for term, tf in c.items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(i)
                tfs.append(tf)
        norm = self.k1 * (1.0 - self.b + self.b * self.lengths / self.avgdl)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, (docs, tfs) in postings.items():
            d = np.asarray(docs, dtype=np.int64)
            tf = np.asarray(tfs, dtype=np.float64)
            idf = math.log(1.0 + (self.num_docs - len(docs) + 0.5) / (len(docs) + 0.5))
            self._postings[term] = (d, idf * tf * (self.k1 + 1.0) / (tf + norm[d]))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of ``query`` against every document, [N] float64 (0 where no term matches)."""
        out = np.zeros(self.num_docs, dtype=np.float64)
        for term in bm25_tokens(query):
            hit = self._postings.get(term)
            if hit is not None:
                out[hit[0]] += hit[1]
        return out

    def top(self, query: str, k: int) -> list[int]:
        """Indexes of the ``k`` highest-scoring documents, best first (ties: lower index first)."""
        s = self.scores(query)
        k = min(int(k), self.num_docs)
        if k <= 0:
            return []
        return [int(i) for i in np.argsort(-s, kind="stable")[:k]]
