"""Faithfulness tests of ``orma.weighted-pooling`` (ORMA's SPARC-like token–atom pooling).

The reference is an explicit-loop transcription of ORMA's ``get_sparc_rep`` /
``get_local_logits`` (tests/orma_loops.py), one token and one atom at a time.
"""

from __future__ import annotations

import pytest
import torch
from orma_loops import sparc as loop_sparc
from repmix.sdk import Granularity, InputError, Runtime
from repmix.sdk.conformance import Case, conformance_cases
from repmix_orma.fine_grained import WeightedPoolingAligner, pair_blocks, sparc_pool

EPS = 1e-8


def aligner(**config: object) -> WeightedPoolingAligner:
    return WeightedPoolingAligner(WeightedPoolingAligner.Config(**config), Runtime())


def masked_batch(seed: int, batch: int, length: int, dim: int, lengths: list[int]) -> Granularity:
    """A float64 sequence granularity with right padding of the given real lengths."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, dim, generator=gen, dtype=torch.float64)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return Granularity(hidden, mask)


@pytest.fixture
def pair_inputs() -> tuple[Granularity, Granularity]:
    tokens = masked_batch(0, 3, 7, 6, [7, 4, 2])
    atoms = masked_batch(1, 3, 5, 6, [3, 5, 1])
    return tokens, atoms


def loop_pooled(a: Granularity, b: Granularity, i: int, j: int, include_padding: bool) -> tuple[list[float], list[float]]:
    return loop_sparc(
        a.hidden[i].tolist(), a.mask[i].tolist(), b.hidden[j].tolist(), b.mask[j].tolist(), EPS, include_padding
    )


@pytest.mark.parametrize("include_padding", [False, True])
def test_paired_logits_equal_reference_loops(pair_inputs, include_padding: bool) -> None:
    """Faithful to ORMA's training logits: first(i, i) · second(j, j), per the official get_local_logits."""
    a, b = pair_inputs
    al = aligner(include_padding=include_padding).train()
    out = al(a, b)
    n = a.hidden.shape[0]
    pooled = [loop_pooled(a, b, i, i, include_padding) for i in range(n)]
    expected = torch.tensor([[sum(p * q for p, q in zip(pooled[i][0], pooled[j][1])) for j in range(n)] for i in range(n)],
                            dtype=torch.float64)
    assert out.detail["scoring"] == "paired"
    torch.testing.assert_close(out.scores, expected, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out.detail["first"], torch.tensor([p[0] for p in pooled], dtype=torch.float64))


@pytest.mark.parametrize("include_padding", [False, True])
def test_all_pairs_scores_equal_reference_loops(pair_inputs, include_padding: bool) -> None:
    """Evaluation scores every (text i, molecule j) as its own pair: first_ij · second_ij (reference loops)."""
    a, b = pair_inputs
    out = aligner(include_padding=include_padding).eval()(a, b)
    expected = torch.empty(3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            f, s = loop_pooled(a, b, i, j, include_padding)
            expected[i, j] = sum(p * q for p, q in zip(f, s))
    assert out.detail["scoring"] == "all-pairs"
    torch.testing.assert_close(out.scores, expected, atol=1e-10, rtol=1e-10)
    assert out.detail["second"].shape == (3, 3, 6)


def test_paired_and_all_pairs_agree_on_the_diagonal(pair_inputs) -> None:
    a, b = pair_inputs
    al = aligner()
    paired = al.train()(a, b).scores
    exact = al.eval()(a, b).scores
    torch.testing.assert_close(paired.diagonal(), exact.diagonal(), atol=1e-12, rtol=0)
    assert not torch.allclose(paired, exact)  # off-diagonal: the unpaired convention matters


def test_blocks_do_not_change_scores(pair_inputs) -> None:
    """Tiny chunk budgets (one pair per block, then a few) give the same all-pairs scores."""
    a, b = pair_inputs
    full = aligner().eval()(a, b)
    for budget in (1, 500, 2000):
        chunked = aligner(chunk_elements=budget).eval()(a, b)
        torch.testing.assert_close(chunked.scores, full.scores, atol=1e-12, rtol=0)
        torch.testing.assert_close(chunked.detail["first"], full.detail["first"])


def test_pair_blocks_cover_every_pair_once() -> None:
    for n_a, n_b, per_pair, budget in [(5, 7, 3, 10), (4, 4, 100, 1), (3, 9, 1, 1000), (6, 2, 2, 9)]:
        seen = torch.zeros(n_a, n_b, dtype=torch.long)
        for rs, cs in pair_blocks(n_a, n_b, per_pair, budget):
            assert (rs.stop - rs.start) * (cs.stop - cs.start) <= max(1, budget // per_pair)
            seen[rs, cs] += 1
        assert bool((seen == 1).all())


def test_masked_pooling_ignores_padding_values_and_length(pair_inputs) -> None:
    """With include_padding false, garbage in padded slots and extra padding change nothing."""
    a, b = pair_inputs
    clean = aligner().eval()(a, b).scores

    def pad(g: Granularity, extra: int) -> Granularity:
        hidden = torch.cat([g.hidden, torch.zeros(g.hidden.shape[0], extra, g.hidden.shape[2], dtype=g.hidden.dtype)], 1)
        mask = torch.cat([g.mask, torch.zeros(g.mask.shape[0], extra, dtype=torch.bool)], 1)
        hidden = torch.where(mask[..., None], hidden, torch.full_like(hidden, 1e3))
        return Granularity(hidden, mask)

    noisy = aligner().eval()(pad(a, 4), pad(b, 3)).scores
    torch.testing.assert_close(noisy, clean, atol=1e-10, rtol=1e-10)


def test_include_padding_depends_on_padding_as_the_official_code(pair_inputs) -> None:
    """include_padding reproduces the official sums over every slot, so extra padding changes scores."""
    a, b = pair_inputs
    base = aligner(include_padding=True).eval()(a, b).scores
    longer = Granularity(
        torch.cat([a.hidden, torch.randn(3, 2, 6, dtype=torch.float64)], 1),
        torch.cat([a.mask, torch.zeros(3, 2, dtype=torch.bool)], 1),
    )
    assert not torch.allclose(aligner(include_padding=True).eval()(longer, b).scores, base)


def test_gradients_reach_both_sides_not_padding(pair_inputs) -> None:
    a, b = pair_inputs
    x = a.hidden.clone().requires_grad_(True)
    y = b.hidden.clone().requires_grad_(True)
    scores = aligner().train()(Granularity(x, a.mask), Granularity(y, b.mask)).scores
    (scores * torch.randn(3, 3, dtype=torch.float64)).sum().backward()
    assert x.grad is not None and y.grad is not None
    assert bool(x.grad[a.mask].abs().sum(-1).gt(0).all())
    assert float(x.grad[~a.mask].abs().sum()) == 0.0
    assert float(y.grad[~b.mask].abs().sum()) == 0.0
    assert torch.isfinite(y.grad).all()


def test_molecule_without_atoms_scores_zero_and_stays_finite() -> None:
    """A second-side item without real elements pools to LayerNorm(0) = 0: score 0, finite gradients."""
    a = masked_batch(3, 2, 4, 5, [4, 2])
    b = masked_batch(4, 2, 3, 5, [3, 0])
    y = b.hidden.clone().requires_grad_(True)
    out = aligner().eval()(a, Granularity(y, b.mask))
    assert bool((out.scores[:, 1] == 0).all())
    out.scores.sum().backward()
    assert torch.isfinite(y.grad).all()


def test_sparc_pool_broadcasts_like_a_loop(pair_inputs) -> None:
    """[B_a, 1] x [1, B_b] broadcasting equals pooling each pair separately."""
    a, b = pair_inputs
    f, s = sparc_pool(a.hidden[:, None], a.mask[:, None], b.hidden[None], b.mask[None], epsilon=EPS, include_padding=False)
    for i in range(3):
        for j in range(3):
            fi, sj = sparc_pool(a.hidden[i], a.mask[i], b.hidden[j], b.mask[j], epsilon=EPS, include_padding=False)
            torch.testing.assert_close(f[i, 0], fi)
            torch.testing.assert_close(s[i, j], sj)


def test_paired_training_needs_equal_batch_sizes(pair_inputs) -> None:
    a, b = pair_inputs
    short = Granularity(b.hidden[:2], b.mask[:2])
    with pytest.raises(InputError, match="all-pairs"):
        aligner().train()(a, short)
    assert aligner(train_scoring="all-pairs").train()(a, short).scores.shape == (3, 2)


CASES = [
    Case(
        "aligner",
        "orma.weighted-pooling",
        bad_configs=[{"epsilon": 0}, {"train_scoring": "diagonal"}, {"chunk_elements": 0}],
        expected_failures={
            "gradients": "train_scoring 'paired' (ORMA's training logits) needs B_a == B_b; the kit feeds B_b = B_a + 1"
        },
    ),
    Case("aligner", "orma.weighted-pooling", {"train_scoring": "all-pairs"}, id="aligner-weighted-pooling-all-pairs"),
    Case(
        "aligner",
        "orma.weighted-pooling",
        {"train_scoring": "all-pairs", "include_padding": True},
        id="aligner-weighted-pooling-official-padding",
        expected_failures={"padding_invariance": "include_padding sums over padded slots, as the official code"},
    ),
    Case(
        "aligner",
        "orma.weighted-pooling",
        {"train_scoring": "all-pairs", "chunk_elements": 64},
        id="aligner-weighted-pooling-chunked",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
