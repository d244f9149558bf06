"""Hamming search over packed binary codes (what makes binary codes fast to search).

Codes are packed 8 bits a byte (``pack``); distances are XOR + popcount, taken over 64-bit
words (the bytes zero-padded to a multiple of 8; zero pads XOR to zero), so a 128-bit code costs
two word operations per pair. ``search`` keeps the k nearest documents per query with
``argpartition`` on the unique key ``distance · N + index`` (exact: ties by document index, the
same order as a stable sort of the distances) and sorts only those k.
"""

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


def as_words(packed: np.ndarray) -> np.ndarray:
    """Packed bytes [N, n] -> 64-bit words [N, ceil(n/8)] (zero-padded; the Hamming distance is unchanged)."""
    p = np.asarray(packed, dtype=np.uint8)
    pad = (-p.shape[1]) % 8
    if pad:
        p = np.concatenate([p, np.zeros((p.shape[0], pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(p).view(np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _POPCOUNT[x.view(np.uint8)].reshape(*x.shape, -1).sum(axis=-1, dtype=np.uint8)


def hamming(packed_queries: np.ndarray, packed_docs: np.ndarray) -> np.ndarray:
    """Hamming distances [Q, N] between packed codes (XOR + popcount over 64-bit words)."""
    q, d = as_words(packed_queries), as_words(packed_docs)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"codes of different lengths: {packed_queries.shape[1]} and {packed_docs.shape[1]} bytes")
    x = np.bitwise_xor(q[:, None, :], d[None, :, :])
    return _popcount(x).sum(axis=2, dtype=np.int32)


def top_k(distances: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the ``k`` smallest distances per row, ties by index (= a stable argsort's first k)."""
    n = distances.shape[1]
    k = min(k, n)
    key = distances.astype(np.int64) * n + np.arange(n, dtype=np.int64)
    if k < n:
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
        key_part = np.take_along_axis(key, part, axis=1)
        return np.take_along_axis(part, np.argsort(key_part, axis=1), axis=1)
    return np.argsort(key, axis=1)


def search(packed_queries: np.ndarray, packed_docs: np.ndarray, k: int = 10, chunk: int = 64) -> tuple[np.ndarray, float]:
    """Indexes of the ``k`` nearest documents per query (ties by index), and seconds per query."""
    k = min(k, packed_docs.shape[0])
    out = np.zeros((packed_queries.shape[0], k), dtype=np.int64)
    docs = as_words(packed_docs)
    start = time.perf_counter()
    for i in range(0, packed_queries.shape[0], chunk):
        q = as_words(packed_queries[i : i + chunk])
        d = _popcount(np.bitwise_xor(q[:, None, :], docs[None, :, :])).sum(axis=2, dtype=np.int32)
        out[i : i + chunk] = top_k(d, k)
    return out, (time.perf_counter() - start) / max(1, packed_queries.shape[0])
