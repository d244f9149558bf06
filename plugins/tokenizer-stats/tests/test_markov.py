"""Faithfulness: the closed forms of the switching chain and the unigram-over-BPE diagnostic."""

from __future__ import annotations

import math

import pytest
from repmix_tokenizer_stats import (
    binary_entropy,
    bpe_encode,
    char_unigram_bits,
    diagnostic,
    entropy_rate,
    sample_chain,
    stationary,
    train_bpe,
    unigram_entropy,
)


def test_closed_forms_for_p_q_0_1() -> None:
    assert unigram_entropy(0.1, 0.1) == pytest.approx(1.0, abs=1e-12)
    assert f"{unigram_entropy(0.1, 0.1):.3f}" == "1.000"
    assert f"{entropy_rate(0.1, 0.1):.3f}" == "0.469"
    assert entropy_rate(0.1, 0.1) == pytest.approx(binary_entropy(0.1), abs=1e-15)


@pytest.mark.parametrize(("p", "q"), [(0.1, 0.3), (0.5, 0.5), (0.02, 0.9)])
def test_entropy_rate_is_the_stationary_mix_of_row_entropies(p: float, q: float) -> None:
    pi0, pi1 = stationary(p, q)
    assert pi0 + pi1 == pytest.approx(1.0)
    assert pi0 * p == pytest.approx(pi1 * q)  # balance
    assert entropy_rate(p, q) == pytest.approx(pi0 * binary_entropy(p) + pi1 * binary_entropy(q), abs=1e-12)
    assert entropy_rate(p, q) <= unigram_entropy(p, q) + 1e-12


def test_empirical_character_unigram_cross_entropy_is_one_bit() -> None:
    train = sample_chain(100_000, 0.1, 0.1, seed=0)
    test = sample_chain(50_000, 0.1, 0.1, seed=1)
    assert char_unigram_bits(train, test) == pytest.approx(1.0, abs=0.01)
    flips = sum(a != b for a, b in zip(test, test[1:])) / (len(test) - 1)
    assert flips == pytest.approx(0.1, abs=0.01)


def test_sampling_is_seeded() -> None:
    assert sample_chain(500, 0.2, 0.3, seed=4) == sample_chain(500, 0.2, 0.3, seed=4)
    assert sample_chain(500, 0.2, 0.3, seed=4) != sample_chain(500, 0.2, 0.3, seed=5)
    with pytest.raises(ValueError):
        sample_chain(10, 0.0, 0.1)


def test_bpe_is_lossless_and_deterministic() -> None:
    text = sample_chain(5000, 0.1, 0.1, seed=2)
    rules = train_bpe(text, 20)
    assert rules == train_bpe(text, 20)
    assert "".join(bpe_encode(text, rules)) == text


def test_unigram_over_bpe_tokens_decreases_towards_the_entropy_rate() -> None:
    rows = diagnostic(0.1, 0.1, train_chars=60_000, test_chars=30_000, merges=(0, 1, 3, 7, 15, 31, 63), seed=0)
    bits = [r["bits_per_char"] for r in rows]
    h_inf = entropy_rate(0.1, 0.1)
    assert bits[0] == pytest.approx(1.0, abs=0.01)  # 0 merges = the character unigram
    assert all(b2 <= b1 + 1e-3 for b1, b2 in zip(bits, bits[1:])), bits
    assert all(b >= h_inf - 0.01 for b in bits), bits
    assert bits[-1] < 0.62 and bits[-1] - h_inf < 0.3 * (bits[0] - h_inf)
    assert not math.isnan(rows[-1]["chars_per_token"])
