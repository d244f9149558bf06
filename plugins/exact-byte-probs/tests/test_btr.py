"""Faithfulness: the Byte-Token Representation Lemma recovers a Markov source exactly on the {A, B, AA} toy."""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest
from repmix_exact_byte_probs import END, ByteLM, canonical_prefix_check, max_prefix_encode, naive_next_byte

A, B = ord("A"), ord("B")
VOCAB = [b"A", b"B", b"AA", b""]  # ids 0, 1, 2 and the end token 3
END_ID = 3
N = 7  # documents are exactly N bytes long
INIT = {A: 0.6, B: 0.4}
TRANS = {A: {A: 0.7, B: 0.3}, B: {A: 0.2, B: 0.8}}


def markov_prob(s: bytes) -> float:
    p = INIT[s[0]]
    for a, b in zip(s, s[1:]):
        p *= TRANS[a][b]
    return p


def exact_token_lm():  # type: ignore[no-untyped-def]
    """The exact token-level distribution induced by maximum-prefix encoding of every length-N string."""
    docs = []
    for chars in itertools.product(b"AB", repeat=N):
        s = bytes(chars)
        docs.append((tuple(max_prefix_encode(s, VOCAB)) + (END_ID,), markov_prob(s)))
    assert math.isclose(sum(p for _, p in docs), 1.0)

    def lm(prefix: tuple[int, ...]) -> np.ndarray:
        k = len(prefix)
        mass = np.zeros(len(VOCAB))
        for toks, p in docs:
            if toks[:k] == prefix and len(toks) > k:
                mass[toks[k]] += p
        if mass.sum() == 0:  # a prefix of probability 0: any distribution
            mass[:] = 1.0
        with np.errstate(divide="ignore"):
            return np.log(mass / mass.sum())

    return lm


@pytest.fixture(scope="module")
def byte_lm() -> ByteLM:
    return ByteLM(exact_token_lm(), VOCAB, END_ID)


def test_recovers_the_true_transitions_exactly(byte_lm: ByteLM) -> None:
    for n in range(N):
        for chars in itertools.product(b"AB", repeat=n):
            x = bytes(chars)
            dist = byte_lm.next_byte_distribution(x)
            truth = INIT if n == 0 else TRANS[x[-1]]
            assert dist[A] == pytest.approx(truth[A], abs=1e-9)
            assert dist[B] == pytest.approx(truth[B], abs=1e-9)
            assert dist[END] == pytest.approx(0.0, abs=1e-12)
            assert dist.sum() == pytest.approx(1.0, abs=1e-12)
            assert byte_lm.prefix_probability(x) == pytest.approx(
                sum(markov_prob(x + bytes(r)) for r in itertools.product(b"AB", repeat=N - n)), abs=1e-12)
    full = b"ABAABBA"
    assert byte_lm.next_byte_distribution(full)[END] == pytest.approx(1.0, abs=1e-12)


def test_naive_token_conditioning_is_biased(byte_lm: ByteLM) -> None:
    """After the token "A" the next token is never "A" or "AA" (else maximum-prefix would have made "AA")."""
    naive = naive_next_byte(byte_lm.lm, VOCAB, (0,), END_ID)  # canonical tokens of "A"
    assert naive[A] == pytest.approx(0.0, abs=1e-12)
    assert byte_lm.next_byte_distribution(b"A")[A] == pytest.approx(TRANS[A][A], abs=1e-9)


def test_pruning_non_canonical_encodings_changes_nothing_for_the_exact_model() -> None:
    lm = exact_token_lm()
    pruned = ByteLM(lm, VOCAB, END_ID, valid=canonical_prefix_check(VOCAB))
    plain = ByteLM(lm, VOCAB, END_ID)
    for x in (b"", b"A", b"AA", b"AAB", b"BAAA", b"AAAAA"):
        np.testing.assert_allclose(pruned.next_byte_distribution(x), plain.next_byte_distribution(x), atol=1e-12)


def test_byte_logprobs_chain_rule(byte_lm: ByteLM) -> None:
    x = b"AABABBA"
    lp = byte_lm.byte_logprobs(x)
    assert lp.shape == (N + 1,)
    assert math.exp(lp.sum()) == pytest.approx(markov_prob(x), rel=1e-9)


def random_lm(vocab_size: int, seed: int = 0):  # type: ignore[no-untyped-def]
    def lm(prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(repr((seed, prefix)).encode()))
        logits = rng.normal(size=vocab_size) * 2
        return logits - np.logaddexp.reduce(logits)

    return lm


def test_any_token_lm_gives_a_consistent_byte_distribution() -> None:
    """For an arbitrary LM: P(x) = sum_b P(x b) + P(x, end), so next-byte distributions sum to 1 exactly."""
    vocab = [b"a", b"b", b"ab", b"ba", b"aab", b"", b"bb"]
    blm = ByteLM(random_lm(len(vocab)), vocab, end_id=5)
    assert blm.prefix_probability(b"") == pytest.approx(1.0, abs=1e-12)
    for x in (b"", b"a", b"ab", b"aba", b"bbab"):
        mass = blm.next_byte_mass(x)
        assert mass.sum() == pytest.approx(blm.prefix_probability(x), rel=1e-12)
        children = sum(blm.prefix_probability(x + bytes([c])) for c in b"ab")
        assert children + mass[END] == pytest.approx(mass.sum(), rel=1e-10)
        assert blm.next_byte_distribution(x).sum() == pytest.approx(1.0, abs=1e-12)


def test_committing_a_boundary_prefix_matches_the_full_walk_when_the_boundary_is_certain() -> None:
    """With a space that always starts a token, conditioning on the canonical prefix changes nothing."""
    vocab = [b"a", b"b", b"ab", b" a", b" b", b" ", b""]
    end = 6
    base = random_lm(len(vocab), seed=3)
    canon = canonical_prefix_check(vocab)

    def lm(prefix: tuple[int, ...]) -> np.ndarray:  # a model that only emits valid (canonical) prefixes
        out = base(prefix).copy()
        for t in range(len(vocab)):
            if t != end and not canon(prefix + (t,)):
                out[t] = -np.inf
        return out - np.logaddexp.reduce(out)

    blm = ByteLM(lm, vocab, end)
    x = b"ab a b"

    def boundary(data: bytes, i: int) -> bool:
        return 0 < i < len(data) and data[i] == 0x20

    def encode(data: bytes) -> list[int]:
        return max_prefix_encode(data, vocab)

    # committed runs condition on the prefix: compare next-byte distributions, not joint probabilities
    full = [blm.next_byte_distribution(x[:i]) for i in range(len(x) + 1)]
    lp = blm.byte_logprobs(x, boundaries=boundary, encode=encode)
    for i in range(len(x) + 1):
        p = full[i][x[i]] if i < len(x) else full[i][END]
        # the walk from the start includes non-canonical covers that cross the boundary only with probability 0
        assert math.exp(lp[i]) == pytest.approx(p, rel=1e-9)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="end_id"):
        ByteLM(random_lm(3), [b"a", b"b", b""], end_id=7)
    blm = ByteLM(random_lm(3), [b"a", b"b", b""], end_id=2, max_states=5)
    with pytest.raises(RuntimeError, match="boundary states"):
        blm.next_byte_distribution(b"ab" * 10)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        max_prefix_encode(b"c", [b"a"])
