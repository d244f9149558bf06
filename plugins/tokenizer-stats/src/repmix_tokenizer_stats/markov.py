"""The Markov-source diagnostic of Rajaraman, Jiao & Ramchandran (Toward a theory of tokenization).

Binary switching chain over two characters: P(1|0) = p, P(0|1) = q. Closed forms:

* stationary distribution pi_1 = p / (p + q);
* a unigram model over characters has cross-entropy H(pi) bits per character;
* the entropy rate is H_inf = (q h(p) + p h(q)) / (p + q) bits per character.

For p = q = 0.1: H(pi) = 1.000 bit and H_inf = h(0.1) = 0.469 bit. A unigram model over
*tokens* of a BPE dictionary learned on the chain approaches H_inf as the dictionary grows;
one over characters is stuck at H(pi). Everything here is numpy / pure Python.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np


def binary_entropy(p: float) -> float:
    """h(p) in bits (0 at p in {0, 1})."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def stationary(p: float, q: float) -> tuple[float, float]:
    """(pi_0, pi_1) of the switching chain."""
    _check(p, q)
    return q / (p + q), p / (p + q)


def unigram_entropy(p: float, q: float) -> float:
    """H(pi): the cross-entropy of the best character-unigram model, bits per character."""
    return binary_entropy(stationary(p, q)[1])


def entropy_rate(p: float, q: float) -> float:
    """H_inf = (q h(p) + p h(q)) / (p + q), bits per character."""
    _check(p, q)
    return (q * binary_entropy(p) + p * binary_entropy(q)) / (p + q)


def _check(p: float, q: float) -> None:
    if not (0.0 < p <= 1.0 and 0.0 < q <= 1.0):
        raise ValueError(f"switching probabilities must be in (0, 1], got p={p}, q={q}")


def sample_chain(length: int, p: float, q: float, seed: int = 0, alphabet: str = "01") -> str:
    """``length`` characters of the chain, started from its stationary distribution (numpy, seeded)."""
    _check(p, q)
    if len(alphabet) != 2 or alphabet[0] == alphabet[1]:
        raise ValueError(f"alphabet must be two distinct characters, got {alphabet!r}")
    rng = np.random.default_rng(seed)
    u = rng.random(length)
    states = np.empty(length, dtype=np.int8)
    state = int(u[0] < stationary(p, q)[1]) if length else 0
    for i in range(length):
        if i:
            flip = p if state == 0 else q
            if u[i] < flip:
                state = 1 - state
        states[i] = state
    return "".join(alphabet[s] for s in states.tolist())


def char_unigram_bits(train: str, test: str) -> float:
    """Bits per character of ``test`` under the character-unigram MLE of ``train`` (add-0.5 smoothing)."""
    alphabet = sorted(set(train) | set(test))
    counts = Counter(train)
    total = len(train) + 0.5 * len(alphabet)
    logq = {a: math.log2((counts[a] + 0.5) / total) for a in alphabet}
    return -sum(logq[c] for c in test) / max(len(test), 1)


# ------------------------------------------------------------------------------------------ toy BPE
def train_bpe(text: str, merges: int) -> list[tuple[str, str]]:
    """Learn ``merges`` BPE merges on ``text`` (no pre-tokenization; ties broken by the pair's string)."""
    seq: list[str] = list(text)
    rules: list[tuple[str, str]] = []
    for _ in range(merges):
        pairs = Counter(zip(seq, seq[1:]))
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if best[1] < 2:
            break
        a, b = best[0]
        rules.append((a, b))
        seq = _merge(seq, a, b)
    return rules


def _merge(seq: Sequence[str], a: str, b: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(seq)
    while i < n:
        if i + 1 < n and seq[i] == a and seq[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def bpe_encode(text: str, rules: Iterable[tuple[str, str]]) -> list[str]:
    """Apply the merges in order (standard BPE encoding)."""
    seq: list[str] = list(text)
    for a, b in rules:
        seq = _merge(seq, a, b)
    return seq


def token_unigram_bits_per_char(train_tokens: Sequence[str | int], test_tokens: Sequence[str | int], test_chars: int,
                                vocab_size: int | None = None) -> float:
    """Bits per character of the test tokens under the token-unigram MLE of the train tokens.

    Add-0.5 smoothing over ``vocab_size`` types (default: the types seen in either list), so an
    unseen test token costs a finite amount.
    """
    counts = Counter(train_tokens)
    types = vocab_size if vocab_size is not None else len(set(counts) | set(test_tokens))
    total = len(train_tokens) + 0.5 * types
    bits = -sum(math.log2((counts[t] + 0.5) / total) for t in test_tokens)
    return bits / max(test_chars, 1)


def diagnostic(p: float = 0.1, q: float = 0.1, *, train_chars: int = 200_000, test_chars: int = 50_000,
               merges: Sequence[int] = (0, 1, 3, 7, 15, 31, 63, 127), seed: int = 0) -> list[dict[str, float]]:
    """The table: per dictionary size, unigram-over-BPE-tokens bits per character (held out).

    Rows: ``merges``, ``vocab`` (2 + merges learned), ``bits_per_char``, ``chars_per_token``; the
    first row (0 merges) is the character-unigram model.
    """
    train = sample_chain(train_chars, p, q, seed)
    test = sample_chain(test_chars, p, q, seed + 1)
    rules_all = train_bpe(train, max(merges))
    rows = []
    for m in merges:
        rules = rules_all[:m]
        tr, te = bpe_encode(train, rules), bpe_encode(test, rules)
        rows.append({
            "merges": float(len(rules)),
            "vocab": float(2 + len(rules)),
            "bits_per_char": token_unigram_bits_per_char(tr, te, len(test)),
            "chars_per_token": len(test) / len(te),
        })
    return rows
