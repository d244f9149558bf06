"""Faithfulness tests of ``orma.ot-multitoken`` (ORMA's token -> motif optimal transport level).

References: POT's ``ot.sinkhorn`` (entropic plans) and ``ot.emd2`` (exact OT
cost), and an explicit-loop transcription of ORMA's ``get_phrase_rep`` +
``get_mid_logits`` (tests/orma_loops.py).
"""

from __future__ import annotations

import numpy as np
import orma_loops as loops
import ot
import pytest
import torch
from repmix.sdk import ConfigError, Granularity, InputError, Runtime
from repmix.sdk.conformance import Case, conformance_cases
from repmix_orma.fine_grained import sparc_pool
from repmix_orma.ot import OTMultiTokenAligner, ipot, orma_cost

EPS = 1e-8


def aligner(**config: object) -> OTMultiTokenAligner:
    return OTMultiTokenAligner(OTMultiTokenAligner.Config(**config), Runtime())


def masked_batch(seed: int, batch: int, length: int, dim: int, lengths: list[int]) -> Granularity:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, dim, generator=gen, dtype=torch.float64)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return Granularity(hidden, mask)


@pytest.fixture
def batch() -> tuple[Granularity, Granularity]:
    """Three pairs: tokens [3, 8, 5] with padding, motifs [3, 4, 5] with padding."""
    return masked_batch(0, 3, 8, 5, [8, 5, 3]), masked_batch(1, 3, 4, 5, [4, 2, 3])


def real_block(t: torch.Tensor, g_a: Granularity, g_b: Granularity, i: int, j: int) -> np.ndarray:
    return t[g_a.mask[i]][:, g_b.mask[j]].numpy()


# ----------------------------------------------------------------------------- solvers vs POT
@pytest.mark.parametrize("marginals", ["real", "all-slots"])
def test_sinkhorn_plan_equals_pot_reference(batch, marginals: str) -> None:
    """The batched sinkhorn plan equals POT's ot.sinkhorn per pair (same cost, reg, marginals) within 1e-6."""
    a, b = batch
    al = aligner(solver="sinkhorn", reg=0.1, tol=1e-11, max_iter=100000, marginals=marginals)
    plan = al.transport_plan(a.hidden, a.mask, b.hidden, b.mask)
    cost = orma_cost(a.hidden, a.mask, b.hidden, b.mask, EPS)
    for i in range(3):
        if marginals == "real":
            c = real_block(cost[i], a, b, i, i)
            ref_a, ref_b = np.full(c.shape[0], 1 / c.shape[0]), np.full(c.shape[1], 1 / c.shape[1])
            got = real_block(plan[i], a, b, i, i)
            # padding carries no mass at all
            assert float(plan[i][~a.mask[i]].abs().sum() + plan[i][:, ~b.mask[i]].abs().sum()) == 0.0
        else:
            c = cost[i].numpy()
            ref_a, ref_b = np.full(8, 1 / 8), np.full(4, 1 / 4)
            got = plan[i].numpy()
        ref = ot.sinkhorn(ref_a, ref_b, c, 0.1, numItermax=100000, stopThr=1e-11)
        assert np.abs(got - ref).max() < 1e-6
        np.testing.assert_allclose(got.sum(1), ref_a, atol=1e-9)
        np.testing.assert_allclose(got.sum(0), ref_b, atol=1e-9)


@pytest.mark.parametrize("log_domain", [False, True])
def test_sinkhorn_follows_pot_iterations_per_problem(log_domain: bool) -> None:
    """At a loose tolerance each batched problem stops where POT's per-pair loop stops: plans equal to 1e-12.

    Problems of different sizes share a group (padded with zero-mass slots), so this also shows that
    padding does not change a problem's iterates and that converged problems leave the batch.
    """
    lengths, motifs = [12, 7, 3, 9, 5], [4, 2, 3, 4, 1]
    a, b = masked_batch(3, 5, 12, 6, lengths), masked_batch(4, 5, 4, 6, motifs)
    for tol in (1e-2, 1e-4):
        al = aligner(solver="sinkhorn", reg=0.1, tol=tol, marginals="real", log_domain=log_domain)
        plan = al.transport_plan(a.hidden, a.mask, b.hidden, b.mask)
        cost = orma_cost(a.hidden, a.mask, b.hidden, b.mask, EPS)
        for i, (t, m) in enumerate(zip(lengths, motifs)):
            c = real_block(cost[i], a, b, i, i)
            ref = ot.sinkhorn(np.full(t, 1 / t), np.full(m, 1 / m), c, 0.1, stopThr=tol)
            assert np.abs(real_block(plan[i], a, b, i, i) - ref).max() < 1e-12


def test_sinkhorn_backends_agree(batch) -> None:
    """``backend: torch`` (batched ot.sinkhorn iteration) and ``backend: pot`` (ot.solve_batch) converge alike."""
    a, b = batch
    plans = [
        aligner(solver="sinkhorn", tol=1e-11, max_iter=100000, marginals="real", backend=backend).transport_plan(
            a.hidden, a.mask, b.hidden, b.mask
        )
        for backend in ("torch", "pot")
    ]
    torch.testing.assert_close(plans[0], plans[1], atol=1e-9, rtol=0)


def test_sinkhorn_underflow_is_a_clear_error() -> None:
    x, y = masked_batch(8, 2, 6, 5, [6, 4]), masked_batch(9, 2, 3, 5, [3, 2])
    al = aligner(solver="sinkhorn", reg=0.001, marginals="real", log_domain=False)
    with pytest.raises(InputError, match="log_domain: true"):
        al.transport_plan(x.hidden.float(), x.mask, y.hidden.float(), y.mask)


def test_sinkhorn_plain_and_log_domain_agree(batch) -> None:
    a, b = batch
    log = aligner(solver="sinkhorn", tol=1e-10, max_iter=5000).transport_plan(a.hidden, a.mask, b.hidden, b.mask)
    plain = aligner(solver="sinkhorn", tol=1e-10, max_iter=5000, log_domain=False).transport_plan(
        a.hidden, a.mask, b.hidden, b.mask
    )
    torch.testing.assert_close(log, plain, atol=1e-10, rtol=1e-7)


@pytest.mark.parametrize("beta", [0.5, 0.1])
def test_ipot_run_long_reaches_the_exact_ot_cost_of_pot_emd2(beta: float) -> None:
    """IPOT is a proximal point method: run long, its plan reaches the exact OT cost (POT's ot.emd2)."""
    gen = torch.Generator().manual_seed(3)
    cost = torch.rand(4, 9, 6, generator=gen, dtype=torch.float64) * 2
    plan = ipot(cost, torch.ones(4, 9, dtype=torch.float64), torch.ones(4, 6, dtype=torch.float64),
                beta=beta, iterations=2000)
    for p in range(4):
        exact = ot.emd2(np.full(9, 1 / 9), np.full(6, 1 / 6), cost[p].numpy())
        assert abs(float((plan[p] * cost[p]).sum()) - exact) < 1e-3
        # one inner step per iteration ends on the column scaling: columns are met, rows approximately
        np.testing.assert_allclose(plan[p].sum(0).numpy(), 1 / 6, atol=1e-6)
        np.testing.assert_allclose(plan[p].sum(1).numpy(), 1 / 9, atol=5e-4)


def test_ipot_equals_reference_loop_of_the_official_update(batch) -> None:
    """The default solver reproduces ORMA's 50-step IPOT (beta 0.5, uniform over all slots) to 1e-12."""
    a, b = batch
    plan = aligner().transport_plan(a.hidden, a.mask, b.hidden, b.mask)
    for i in range(3):
        cost = loops.orma_cost(a.hidden[i].tolist(), a.mask[i].tolist(), b.hidden[i].tolist(), b.mask[i].tolist(), EPS)
        ref = torch.tensor(loops.ipot(cost, 0.5, 50, EPS), dtype=torch.float64)
        torch.testing.assert_close(plan[i], ref, atol=1e-12, rtol=1e-9)


# ----------------------------------------------------------------------------- the whole level vs loops
@pytest.mark.parametrize("include_padding", [False, True])
@pytest.mark.parametrize("mode", ["argmin", "argmax"])
def test_paired_logits_equal_reference_loops(batch, include_padding: bool, mode: str) -> None:
    """Faithful to ORMA's get_phrase_rep + get_mid_logits: logits[i, j] = first(i, i) · second(j, j)."""
    a, b = batch
    out = aligner(assignment=mode, include_padding=include_padding).train()(a, b)
    pooled = [
        loops.mid_pair(a.hidden[i].tolist(), a.mask[i].tolist(), b.hidden[i].tolist(), b.mask[i].tolist(),
                       mode=mode, include_padding=include_padding)
        for i in range(3)
    ]
    expected = torch.tensor([[loops.dot(pooled[i][0], pooled[j][1]) for j in range(3)] for i in range(3)],
                            dtype=torch.float64)
    torch.testing.assert_close(out.scores, expected, atol=1e-9, rtol=1e-9)
    for i in range(3):
        cost = loops.orma_cost(a.hidden[i].tolist(), a.mask[i].tolist(), b.hidden[i].tolist(), b.mask[i].tolist(), EPS)
        index = loops.assign(loops.ipot(cost, 0.5, 50, EPS), a.mask[i].tolist(), b.mask[i].tolist(), mode)
        counted = [True] * 8 if include_padding else a.mask[i].tolist()
        real_motif = b.mask[i].tolist()
        expected_index = [k if c and real_motif[k] else -1 for k, c in zip(index, counted)]
        assert out.detail["assignment"][i].tolist() == expected_index
        phrases = loops.multitokens(a.hidden[i].tolist(), index, counted, 4, EPS)
        torch.testing.assert_close(out.detail["multitoken"][i], torch.tensor(phrases, dtype=torch.float64))


def test_all_pairs_equals_a_per_pair_loop(batch) -> None:
    """Batched all-pairs scoring equals calling the aligner on each (text i, molecule j) alone."""
    a, b = batch
    al = aligner().eval()
    batched = al(a, b)
    for i in range(3):
        for j in range(3):
            single = al(Granularity(a.hidden[i : i + 1], a.mask[i : i + 1]), Granularity(b.hidden[j : j + 1], b.mask[j : j + 1]))
            torch.testing.assert_close(batched.scores[i, j], single.scores[0, 0], atol=1e-12, rtol=0)
            torch.testing.assert_close(batched.detail["plan"][i, j], single.detail["plan"][0, 0])
    chunked = aligner(chunk_elements=1).eval()(a, b)
    torch.testing.assert_close(chunked.scores, batched.scores, atol=1e-12, rtol=0)


@pytest.mark.parametrize("config", [{"marginals": "real"}, {"num_token_slots": 10, "num_motif_slots": 6}, {}])
def test_size_groups_do_not_change_plans(batch, config: dict) -> None:
    """Solving in size-sorted groups trimmed to their real slots gives the same plans (IPOT: exactly)."""
    a, b = batch
    whole = aligner(solver_group=10_000, **config).eval()(a, b)
    for group in (1, 2, 4):
        grouped = aligner(solver_group=group, **config).eval()(a, b)
        torch.testing.assert_close(grouped.detail["plan"], whole.detail["plan"], atol=1e-14, rtol=1e-12)
        torch.testing.assert_close(grouped.scores, whole.scores, atol=1e-12, rtol=1e-12)


def test_sinkhorn_auto_domain_is_plain_only_when_safe() -> None:
    from repmix_orma.ot import plain_sinkhorn_is_safe

    assert plain_sinkhorn_is_safe(2.0, 0.1, torch.float32)
    assert not plain_sinkhorn_is_safe(2.0, 0.01, torch.float32)
    assert plain_sinkhorn_is_safe(2.0, 0.01, torch.float64)
    # float32 with a small reg: the log domain keeps the plan finite and on its marginals
    x, y = masked_batch(8, 2, 6, 5, [6, 4]), masked_batch(9, 2, 3, 5, [3, 2])
    plan = aligner(solver="sinkhorn", reg=0.01, marginals="real", max_iter=3000).transport_plan(
        x.hidden.float(), x.mask, y.hidden.float(), y.mask
    )
    assert bool(torch.isfinite(plan).all())
    torch.testing.assert_close(plan[1].sum(0)[:2], torch.full((2,), 0.5), atol=1e-4, rtol=0)


def test_all_pairs_diagonal_equals_paired(batch) -> None:
    a, b = batch
    al = aligner(solver="sinkhorn", marginals="real")
    paired = al.train()(a, b)
    exact = al.eval()(a, b)
    torch.testing.assert_close(paired.scores.diagonal(), exact.scores.diagonal(), atol=1e-12, rtol=0)
    torch.testing.assert_close(paired.detail["plan"], exact.detail["plan"].diagonal(dim1=0, dim2=1).permute(2, 0, 1))


def test_mid_scores_use_the_shared_weighted_pooling(batch) -> None:
    """The level is sparc_pool(multi-tokens, motifs): one pooling implementation for both levels."""
    a, b = batch
    out = aligner().train()(a, b)
    first, second = sparc_pool(out.detail["multitoken"], b.mask, b.hidden, b.mask, epsilon=EPS, include_padding=False)
    torch.testing.assert_close(out.scores, first @ second.T)


# ----------------------------------------------------------------------------- assignment, gradients, masks
def test_argmin_and_argmax_differ_as_documented() -> None:
    """Motifs e1, e2, -(e1+e2)/sqrt2; tokens e1, e2, -e1: argmax = nearest motif, argmin = farthest."""
    e1, e2 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    motifs = torch.stack([e1, e2, -(e1 + e2) / 2**0.5])[None]
    tokens = torch.stack([e1, e2, -e1])[None]
    ones_t, ones_m = torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    got = {}
    for mode in ("argmin", "argmax"):
        out = aligner(assignment=mode).train()(Granularity(tokens, ones_t), Granularity(motifs, ones_m))
        got[mode] = out.detail["assignment"][0].tolist()
    assert got["argmax"] == [0, 1, 2]
    assert got["argmin"] == [2, 2, 0]


def test_gradients_flow_through_the_multitoken_means_only(batch) -> None:
    """The plan and assignment are constants; a token's gradient is its multi-token vector's / (count + eps)."""
    a, b = batch
    w = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = a.hidden.clone().requires_grad_(True)
    y = b.hidden.clone().requires_grad_(True)
    out = aligner().train()(Granularity(x, a.mask), Granularity(y, b.mask))
    assert not out.detail["plan"].requires_grad
    (out.scores * w).sum().backward()
    assert x.grad is not None and y.grad is not None
    index = out.detail["assignment"]
    assert bool(x.grad[index >= 0].abs().sum(-1).gt(0).all())  # every counted token moves its multi-token vector
    assert float(x.grad[~a.mask].abs().sum()) == 0.0
    assert float(y.grad[b.mask].abs().sum()) > 0 and float(y.grad[~b.mask].abs().sum()) == 0.0
    phrase = out.detail["multitoken"].clone().requires_grad_(True)
    first, second = sparc_pool(phrase, b.mask, b.hidden, b.mask, epsilon=EPS, include_padding=False)
    ((first @ second.T) * w).sum().backward()
    for i in range(3):
        for t in range(8):
            k = int(index[i, t])
            if k < 0:
                continue
            count = int((index[i] == k).sum())
            torch.testing.assert_close(x.grad[i, t], phrase.grad[i, k] / (count + EPS), atol=1e-12, rtol=1e-9)


def test_padding_never_matters_with_real_marginals(batch) -> None:
    """marginals: real gives padding no mass: garbage and extra padded slots leave every real output unchanged."""
    a, b = batch
    al = aligner(marginals="real").eval()
    clean = al(a, b)

    def pad(g: Granularity, extra: int) -> Granularity:
        hidden = torch.cat([g.hidden, torch.zeros(3, extra, 5, dtype=torch.float64)], 1)
        mask = torch.cat([g.mask, torch.zeros(3, extra, dtype=torch.bool)], 1)
        return Granularity(torch.where(mask[..., None], hidden, torch.full_like(hidden, -7e2)), mask)

    noisy = al(pad(a, 3), pad(b, 2))
    torch.testing.assert_close(noisy.scores, clean.scores, atol=1e-12, rtol=0)
    torch.testing.assert_close(noisy.detail["plan"][..., :8, :4], clean.detail["plan"], atol=1e-15, rtol=0)


def test_all_slots_marginals_see_the_padding_as_the_official_code(batch) -> None:
    """ORMA's uniform marginals over all slots: values in padded slots do not matter (masked in the cost),
    but the number of padded slots does (it takes mass)."""
    a, b = batch
    al = aligner().eval()
    base = al(a, b)
    garbage = Granularity(torch.where(a.mask[..., None], a.hidden, torch.full_like(a.hidden, 3e2)), a.mask)
    torch.testing.assert_close(al(garbage, b).scores, base.scores, atol=1e-12, rtol=0)
    longer = Granularity(torch.cat([a.hidden, torch.zeros(3, 4, 5, dtype=torch.float64)], 1),
                         torch.cat([a.mask, torch.zeros(3, 4, dtype=torch.bool)], 1))
    assert not torch.allclose(al(longer, b).detail["plan"][..., :8, :], base.detail["plan"])


def test_fixed_slot_counts_equal_official_padding_to_those_lengths(batch) -> None:
    """num_token_slots / num_motif_slots merge the padding into one slot of the right multiplicity:
    same plans and scores as padding every item to exactly that many slots, whatever the batch padding."""
    a, b = batch
    fixed = aligner(num_token_slots=11, num_motif_slots=6).eval()

    def pad_to(g: Granularity, length: int) -> Granularity:
        extra = length - g.hidden.shape[1]
        return Granularity(torch.cat([g.hidden, torch.randn(3, extra, 5, dtype=torch.float64)], 1),
                           torch.cat([g.mask, torch.zeros(3, extra, dtype=torch.bool)], 1))

    official = aligner().eval()(pad_to(a, 11), pad_to(b, 6))
    got = fixed(a, b)
    torch.testing.assert_close(got.scores, official.scores, atol=1e-12, rtol=1e-12)
    pair = a.mask[:, None, :, None] & b.mask[None, :, None, :]
    torch.testing.assert_close(got.detail["plan"], official.detail["plan"][..., :8, :4] * pair, atol=1e-15, rtol=1e-12)
    torch.testing.assert_close(fixed(pad_to(a, 10), pad_to(b, 5)).scores, got.scores, atol=1e-12, rtol=1e-12)


def test_molecule_without_motifs_is_finite_and_scores_zero(batch) -> None:
    a, _ = batch
    b = masked_batch(5, 2, 3, 5, [3, 0])
    y = b.hidden.clone().requires_grad_(True)
    for config in ({}, {"marginals": "real"}, {"solver": "sinkhorn", "marginals": "real"}):
        out = aligner(**config).eval()(a, Granularity(y, b.mask))
        assert bool(torch.isfinite(out.scores).all()) and bool((out.scores[:, 1] == 0).all())
        out.scores.sum().backward()
        assert bool(torch.isfinite(y.grad).all())


def test_config_errors_and_paired_sizes(batch) -> None:
    with pytest.raises(ValueError, match="reg"):
        OTMultiTokenAligner.Config(reg=0.3)
    with pytest.raises(ValueError, match="beta"):
        OTMultiTokenAligner.Config(solver="sinkhorn", beta=0.2)
    with pytest.raises(ValueError, match="all-slots"):
        OTMultiTokenAligner.Config(marginals="real", num_token_slots=64)
    a, b = batch
    with pytest.raises(InputError, match="all-pairs"):
        aligner().train()(a, Granularity(b.hidden[:2], b.mask[:2]))
    assert issubclass(InputError, Exception) and not issubclass(InputError, ConfigError)


CASES = [
    Case(
        "aligner",
        "orma.ot-multitoken",
        bad_configs=[{"beta": 0}, {"iterations": 0}, {"solver": "emd"}, {"assignment": "nearest"}, {"reg": 0.2}],
        expected_failures={
            "gradients": "train_scoring 'paired' (ORMA's training logits) needs B_a == B_b; the kit feeds B_b = B_a + 1",
        },
    ),
    Case(
        "aligner",
        "orma.ot-multitoken",
        {"train_scoring": "all-pairs", "num_token_slots": 16, "num_motif_slots": 16},
        id="aligner-ot-multitoken-fixed-slots",
    ),
    Case(
        "aligner",
        "orma.ot-multitoken",
        {"solver": "sinkhorn", "marginals": "real", "assignment": "argmax", "train_scoring": "all-pairs"},
        id="aligner-ot-multitoken-sinkhorn",
        bad_configs=[{"reg": 0}, {"tol": -1}],
    ),
    Case(
        "aligner",
        "orma.ot-multitoken",
        {"marginals": "real", "train_scoring": "all-pairs", "chunk_elements": 5000},
        id="aligner-ot-multitoken-chunked",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
