"""Exact byte-level probabilities from a token-level LM: the Byte-Token Representation Lemma (BTR).

The token-level model is any callable ``lm(prefix) -> log-probs``: ``prefix`` a tuple of token
ids, the result a vector over the vocabulary (float log-probabilities of the next token;
``end_id`` is the end-of-text token). ``vocab[i]`` is the bytes of token ``i`` (``b""`` for the
end token and other special tokens, which are never part of a cover).

Lemma (Phan et al.): P(x) = sum of P(t) over cover(x), the token sequences t_1..t_k with
bytes(t_1..t_{k-1}) a proper prefix of x and x a prefix of bytes(t_1..t_k). These events are
disjoint and their union is "the byte stream starts with x", so

    P(x_{n+1} = b | x_1..x_n) = P(x b) / P(x)

and the next-byte distribution (256 bytes + end of text) sums to 1 for *any* token LM. The
computation walks the *boundary states*: token sequences whose bytes are exactly x[:j]. From a
state at j < n, a token whose bytes start with x[j:] and go on covers x (its byte at n gives the
next byte); a token equal to x[j:] makes a state at n, whose next token's first byte (or the
end token) gives the next byte.

* ``valid`` (optional): a predicate on token sequences; a state or cover it rejects gets
  probability 0 (the paper's truncation of non-canonical encodings). With an exact model of a
  canonical tokenizer those encodings have probability 0 anyway; with a learnt LM, pruning
  renormalises over valid encodings.
* ``committed``: tokens of a prefix known to end at a token boundary (the paper conditions on the
  longest prefix ending at a whitespace boundary, which the pretokenizer guarantees). States start
  after them, so the work does not grow with the document.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

TokenLM = Callable[[tuple[int, ...]], np.ndarray]
END = 256  # index of "end of text" in a next-byte distribution of 257 entries
OTHER = 257  # index of other non-byte tokens (specials such as padding) in next_byte_mass


class CachedLM:
    """Memoises ``lm(prefix)`` (the walk asks for the same prefix several times)."""

    def __init__(self, lm: TokenLM) -> None:
        self.lm = lm
        self.cache: dict[tuple[int, ...], np.ndarray] = {}
        self.calls = 0

    def __call__(self, prefix: tuple[int, ...]) -> np.ndarray:
        out = self.cache.get(prefix)
        if out is None:
            self.calls += 1
            out = np.asarray(self.lm(prefix), dtype=np.float64)
            self.cache[prefix] = out
        return out


@dataclass
class ByteLM:
    """A byte-level view of a token-level LM (see the module docs)."""

    lm: TokenLM
    vocab: Sequence[bytes]
    end_id: int
    valid: Callable[[tuple[int, ...]], bool] | None = None
    max_states: int = 100_000
    _cached: CachedLM = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cached = self.lm if isinstance(self.lm, CachedLM) else CachedLM(self.lm)
        self.vocab = [bytes(v) for v in self.vocab]
        if not 0 <= self.end_id < len(self.vocab):
            raise ValueError(f"end_id {self.end_id} is outside the vocabulary of {len(self.vocab)} tokens")
        self._by_first: dict[int, list[int]] = {}
        for i, v in enumerate(self.vocab):
            if v:
                self._by_first.setdefault(v[0], []).append(i)

    # -------------------------------------------------------------------------------- states
    def states(self, x: bytes, committed: tuple[int, ...] = ()) -> list[dict[tuple[int, ...], float]]:
        """``states[j]``: token sequences (after ``committed``) whose bytes are exactly ``x[:j]`` -> probability."""
        n = len(x)
        out: list[dict[tuple[int, ...], float]] = [dict() for _ in range(n + 1)]
        out[0][()] = 1.0
        total = 1
        for j in range(n):
            for seq, p in out[j].items():
                if p == 0.0:
                    continue
                logp = self._cached(committed + seq)
                for tok in self._by_first.get(x[j], ()):
                    v = self.vocab[tok]
                    if x.startswith(v, j):
                        new = seq + (tok,)
                        if self.valid is not None and not self.valid(committed + new):
                            continue
                        k = j + len(v)
                        out[k][new] = out[k].get(new, 0.0) + p * math.exp(logp[tok])
                        total += 1
                        if total > self.max_states:
                            raise RuntimeError(
                                f"more than {self.max_states} boundary states for {n} bytes: commit a prefix "
                                "that ends at a token boundary (committed=...) or raise max_states"
                            )
        return out

    def next_byte_mass(self, x: bytes, committed: tuple[int, ...] = ()) -> np.ndarray:
        """Unnormalised P(x b) for the 256 bytes b, P(x, end) at index 256 and P(x, another special token) at 257.

        Probabilities are relative to ``committed``; the entries sum to P(x) (the lemma's cover sum).
        """
        n = len(x)
        st = self.states(x, committed)
        mass = np.zeros(258, dtype=np.float64)
        for j in range(n):  # covers: a token that starts at j, holds x[j:] and goes past n
            rest = x[j:]
            for seq, p in st[j].items():
                if p == 0.0:
                    continue
                logp = self._cached(committed + seq)
                for tok in self._by_first.get(rest[0], ()):
                    v = self.vocab[tok]
                    if len(v) > len(rest) and v.startswith(rest):
                        if self.valid is not None and not self.valid(committed + seq + (tok,)):
                            continue
                        mass[v[len(rest)]] += p * math.exp(logp[tok])
        for seq, p in st[n].items():  # states at n: the next token's first byte, or the end
            if p == 0.0:
                continue
            probs = np.exp(self._cached(committed + seq))
            if self.valid is None:
                for first, toks in self._by_first.items():
                    mass[first] += p * probs[toks].sum()
            else:
                for first, toks in self._by_first.items():
                    ok = [t for t in toks if self.valid(committed + seq + (t,))]
                    if ok:
                        mass[first] += p * probs[ok].sum()
            mass[END] += p * probs[self.end_id]
            mass[OTHER] += p * (probs.sum() - probs[self.end_id] - sum(probs[t].sum() for t in self._by_first.values()))
        mass[OTHER] = max(mass[OTHER], 0.0)
        return mass

    def next_byte_distribution(self, x: bytes, committed: tuple[int, ...] = (), renormalize: bool = True) -> np.ndarray:
        """P(next byte | x) over 256 bytes + end of text (index 256).

        ``renormalize`` (default): conditioned on the next symbol being a byte or the end, so it sums
        to 1. False: divided by P(x) itself, so special tokens other than the end (padding, mask, ...)
        that a learnt model gives some mass keep it, as token-level scoring does.
        """
        mass = self.next_byte_mass(bytes(x), committed)
        total = mass.sum()
        mass = mass[:257]
        if renormalize:
            total = mass.sum()
        if total <= 0.0:
            raise ValueError(f"the model gives the byte prefix {bytes(x)[:40]!r} probability 0")
        return mass / total

    def prefix_probability(self, x: bytes, committed: tuple[int, ...] = ()) -> float:
        """P(the byte stream starts with x), relative to ``committed``: the lemma's sum over cover(x)."""
        return float(self.next_byte_mass(bytes(x), committed).sum())

    def byte_logprobs(self, x: bytes, *, boundaries: Callable[[bytes, int], bool] | None = None,
                      encode: Callable[[bytes], Sequence[int]] | None = None, renormalize: bool = True) -> np.ndarray:
        """log P(x_i | x_<i) for every byte of ``x`` and log P(end | x) last (``len(x) + 1`` values, nats).

        With ``boundaries(x, i)`` (True when a token boundary is guaranteed before byte i, e.g.
        whitespace for a whitespace pretokenizer) and ``encode`` (the tokenizer's canonical
        encoding), each step commits ``encode(x[:last boundary])`` and enumerates only the rest.
        """
        x = bytes(x)
        out = np.empty(len(x) + 1)
        cut, committed = 0, ()
        for i in range(len(x) + 1):
            if boundaries is not None and encode is not None and i > cut and boundaries(x, i):
                cut, committed = i, tuple(encode(x[:i]))
            dist = self.next_byte_distribution(x[cut:i], committed, renormalize)
            p = dist[x[i]] if i < len(x) else dist[END]
            out[i] = math.log(p) if p > 0 else -math.inf
        return out


def naive_next_byte(lm: TokenLM, vocab: Sequence[bytes], tokens: tuple[int, ...], end_id: int) -> np.ndarray:
    """The *biased* next-byte estimate: the first byte of the next token after the canonical tokens."""
    probs = np.exp(np.asarray(lm(tuple(tokens)), dtype=np.float64))
    out = np.zeros(257)
    for i, v in enumerate(vocab):  # noqa: B007
        if v:
            out[v[0]] += probs[i]
    out[END] += probs[end_id]
    return out


# ------------------------------------------------------------------------- maximum-prefix encoding
def max_prefix_encode(data: bytes, vocab: Sequence[bytes]) -> list[int]:
    """Greedy longest-match (maximum prefix) encoding of ``data``; ties by the lowest id."""
    tokens: list[int] = []
    by_len = sorted((i for i, v in enumerate(vocab) if v), key=lambda i: (-len(vocab[i]), i))
    j = 0
    while j < len(data):
        for i in by_len:
            if data.startswith(vocab[i], j):
                tokens.append(i)
                j += len(vocab[i])
                break
        else:
            raise ValueError(f"byte {data[j]!r} at offset {j} is not in the vocabulary")
    return tokens


def canonical_prefix_check(vocab: Sequence[bytes]) -> Callable[[tuple[int, ...]], bool]:
    """``valid(t)``: ``encode(decode(t)) == t`` under maximum-prefix encoding (necessary for a canonical prefix)."""

    def valid(seq: tuple[int, ...]) -> bool:
        data = b"".join(vocab[t] for t in seq)
        return tuple(max_prefix_encode(data, vocab)) == tuple(seq)

    return valid
