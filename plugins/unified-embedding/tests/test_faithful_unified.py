"""Faithfulness: parameters constant in the number of features; collisions at the birthday rate; stable hashes;
the shared row's gradient is the sum of the features' contributions."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from repmix.sdk import InputError, Runtime
from repmix_unified_embedding import UnifiedEmbeddingEncoder, UnifiedFeatureTokenizer, feature_hash


def build(features, buckets=4096, **enc):  # type: ignore[no-untyped-def]
    tok = UnifiedFeatureTokenizer(UnifiedFeatureTokenizer.Config(features=features, buckets=buckets), Runtime())
    torch.manual_seed(0)
    return tok, UnifiedEmbeddingEncoder(UnifiedEmbeddingEncoder.Config(**enc), Runtime(tokenizer=tok))


def test_parameters_constant_in_the_number_of_features() -> None:
    counts = []
    for k in (1, 2, 5, 20):
        feats = [{"name": f"f{i}", "extract": "value", "chunks": 1 + i % 3} for i in range(k)]
        _, enc = build(feats, buckets=4096, dim=16)
        counts.append(sum(p.numel() for p in enc.parameters()))
    assert counts == [4096 * 16] * 4
    _, two = build([{"name": "a"}], buckets=4096, dim=16, num_tables=2)
    assert sum(p.numel() for p in two.parameters()) == 2 * 4096 * 16


def test_embedding_is_the_concatenation_of_salted_chunks() -> None:
    tok, enc = build([{"name": "cat", "chunks": 3}, {"name": "dog", "chunks": 1}], buckets=97, dim=4)
    out = enc(tok([{"cat": "x", "dog": "y"}]))["sentence"].hidden[0]
    expected = torch.cat([enc.tables[0, feature_hash("x", 0, c, 97)] for c in range(3)]
                         + [enc.tables[0, feature_hash("y", 1, 0, 97)]])
    torch.testing.assert_close(out, expected)
    assert out.shape == (4 * 4,)


def test_collision_rate_matches_the_birthday_bound() -> None:
    m, n = 4096, 1000
    expected = 1 - (1 - 1 / m) ** (n - 1)  # P(a value shares its bucket with another): 0.2161
    rates = []
    for salt in range(20):  # 20 independent hash functions (feature index = salt)
        buckets = [feature_hash(f"value-{i}", salt, 0, m) for i in range(n)]
        counts: dict[int, int] = {}
        for b in buckets:
            counts[b] = counts.get(b, 0) + 1
        rates.append(sum(1 for b in buckets if counts[b] > 1) / n)
    mean = sum(rates) / len(rates)
    assert mean == pytest.approx(expected, abs=0.015)  # ~5 standard errors of the mean


def test_hashes_are_stable_across_processes() -> None:
    here = [feature_hash(v, f, c, 1 << 20) for v, f, c in (("aspirin", 0, 0), ("aspirin", 0, 1), ("aspirin", 1, 0))]
    code = ("from repmix_unified_embedding import feature_hash;"
            "print([feature_hash(v, f, c, 1 << 20) for v, f, c in (('aspirin', 0, 0), ('aspirin', 0, 1), ('aspirin', 1, 0))])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert other == str(here)
    assert len(set(here)) == 3  # the salt separates chunks and features


def test_gradient_of_a_shared_row_is_the_sum_of_feature_contributions() -> None:
    tok, enc = build([{"name": "a"}, {"name": "b"}], buckets=7, dim=3, combiner="sum")
    row = feature_hash("x", 0, 0, 7)
    y = next(f"y{i}" for i in range(1000) if feature_hash(f"y{i}", 1, 0, 7) == row)  # feature b collides with a
    batch = tok([{"a": "x", "b": y}])
    w = torch.randn(6)
    (enc(batch)["sentence"].hidden[0] @ w).backward()
    torch.testing.assert_close(enc.tables.grad[0, row], w[:3] + w[3:])
    assert float(enc.tables.grad[0].abs().sum()) == pytest.approx(float((w[:3] + w[3:]).abs().sum()), rel=1e-6)


def test_bad_items() -> None:
    tok, _ = build([{"name": "words", "extract": "word", "field": "text"}])
    with pytest.raises(InputError, match="no field 'text'"):
        tok([{"other": "x"}])
    with pytest.raises(InputError, match="empty"):
        tok(["   "])
