"""An inverted index over sparse vocabulary vectors (VDR retrieval without a dense matrix product).

Each vocabulary entry (term) keeps a posting list of (document, weight) for the documents whose
sparse vector is non-zero there; a query visits only the posting lists of its own non-zero
terms and accumulates ``q[w] · d[w]``, which is exactly the dot product of the two sparse vectors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class InvertedIndex:
    """Posting lists in CSR form: term ``w``'s postings are ``docs[offsets[w]:offsets[w+1]]``."""

    offsets: np.ndarray  # [V' + 1] int64
    docs: np.ndarray  # [nnz] int32
    weights: np.ndarray  # [nnz] float32
    num_docs: int

    @classmethod
    def build(cls, vectors: np.ndarray) -> InvertedIndex:
        """Index the non-zero entries of ``vectors`` [N, V'] (one row per document)."""
        v = np.asarray(vectors, dtype=np.float32)
        doc_idx, term_idx = np.nonzero(v)
        order = np.lexsort((doc_idx, term_idx))
        terms, docs = term_idx[order], doc_idx[order].astype(np.int32)
        weights = v[docs, terms].astype(np.float32)
        counts = np.bincount(terms, minlength=v.shape[1])
        offsets = np.zeros(v.shape[1] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, docs, weights, int(v.shape[0]))

    @property
    def postings(self) -> int:
        """Number of stored (term, document, weight) entries."""
        return int(self.docs.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory of the index arrays in bytes."""
        return int(self.offsets.nbytes + self.docs.nbytes + self.weights.nbytes)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Dot products of one sparse query vector [V'] with every indexed document: [N]."""
        out = np.zeros(self.num_docs, dtype=np.float32)
        for term in np.flatnonzero(query):
            lo, hi = self.offsets[term], self.offsets[term + 1]
            if hi > lo:
                out[self.docs[lo:hi]] += query[term] * self.weights[lo:hi]
        return out

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, float]:
        """Top-``k`` document indexes and scores per query, and the mean latency per query in seconds."""
        q = np.asarray(queries, dtype=np.float32)
        top_idx = np.zeros((q.shape[0], min(k, self.num_docs)), dtype=np.int64)
        top_val = np.zeros(top_idx.shape, dtype=np.float32)
        start = time.perf_counter()
        for i, row in enumerate(q):
            s = self.scores(row)
            part = np.argpartition(-s, top_idx.shape[1] - 1)[: top_idx.shape[1]]
            order = part[np.argsort(-s[part], kind="stable")]
            top_idx[i], top_val[i] = order, s[order]
        latency = (time.perf_counter() - start) / max(1, q.shape[0])
        return top_idx, top_val, latency
