"""Hamming search over packed binary codes (what makes binary codes fast to search)."""

from __future__ import annotations

import time

import numpy as np

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def pack(codes: np.ndarray) -> np.ndarray:
    """Codes [N, b] in {0, 1} -> bytes [N, ceil(b/8)] (``np.packbits`` along the bits)."""
    c = np.asarray(codes)
    if not np.isin(c, (0, 1)).all():
        raise ValueError("codes must hold only 0 and 1")
    return np.packbits(c.astype(np.uint8), axis=1)


def hamming(packed_queries: np.ndarray, packed_docs: np.ndarray) -> np.ndarray:
    """Hamming distances [Q, N] between packed codes (XOR + popcount)."""
    x = np.bitwise_xor(packed_queries[:, None, :], packed_docs[None, :, :])
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).sum(axis=2, dtype=np.int32)
    return _POPCOUNT[x].sum(axis=2, dtype=np.int32)


def search(packed_queries: np.ndarray, packed_docs: np.ndarray, k: int = 10, chunk: int = 64) -> tuple[np.ndarray, float]:
    """Indexes of the ``k`` nearest documents per query (ties by index), and seconds per query."""
    k = min(k, packed_docs.shape[0])
    out = np.zeros((packed_queries.shape[0], k), dtype=np.int64)
    start = time.perf_counter()
    for i in range(0, packed_queries.shape[0], chunk):
        d = hamming(packed_queries[i : i + chunk], packed_docs)
        out[i : i + chunk] = np.argsort(d, axis=1, kind="stable")[:, :k]
    return out, (time.perf_counter() - start) / max(1, packed_queries.shape[0])
