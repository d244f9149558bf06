"""Faithfulness of vse-hinge against the VSE / VSE++ formula computed with explicit loops.

Reference (hand-derived from the thesis' Eq. and VSE++ ``ContrastiveLoss`` in
``fartashf/vsepp/model.py``; not vendored)::

    C = Σ_k Σ_{l≠k} max(0, Δ − S_kk + S_kl) + max(0, Δ − S_kk + S_lk)

and, with ``max_violation``, the max over l instead of the sum. Tolerance 1e-6 (float64).
"""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import Alignment, LossInputs, Runtime
from repmix_vse.loss import VseHingeLoss


def loop_reference(s: torch.Tensor, margin: float, max_violation: bool) -> float:
    """The published objective, one pair at a time."""
    n, m = s.shape
    total = 0.0
    for k in range(n):
        row = [max(0.0, margin - float(s[k, k]) + float(s[k, l])) for l in range(m) if l != k]
        col = [max(0.0, margin - float(s[k, k]) + float(s[l, k])) for l in range(n) if l != k]
        if max_violation:
            total += max(row, default=0.0) + max(col, default=0.0)
        else:
            total += sum(row) + sum(col)
    return total


def run(scores: torch.Tensor, **cfg: object) -> torch.Tensor:
    loss = VseHingeLoss(VseHingeLoss.Config(**cfg), Runtime())
    return loss(LossInputs({"a": Alignment(scores)}, {})).value


@pytest.mark.parametrize("max_violation", [False, True])
@pytest.mark.parametrize("margin", [0.2, 1.0])
@pytest.mark.parametrize("shape", [(5, 5), (4, 7)])
def test_equals_loop_formula(max_violation: bool, margin: float, shape: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    s = torch.randn(*shape, generator=g, dtype=torch.float64)
    got = run(s, margin=margin, max_violation=max_violation)
    assert float(got) == pytest.approx(loop_reference(s, margin, max_violation), abs=1e-6)
    mean = run(s, margin=margin, max_violation=max_violation, reduction="mean")
    assert float(mean) == pytest.approx(loop_reference(s, margin, max_violation) / shape[0], abs=1e-6)


def test_zero_once_every_margin_is_satisfied() -> None:
    s = torch.full((4, 4), -0.5, dtype=torch.float64)
    s.fill_diagonal_(0.5)
    assert float(run(s, margin=0.9)) == 0.0
    assert float(run(s, margin=1.1)) == pytest.approx(12 * 2 * 0.1, abs=1e-9)


def test_max_violation_bounds_sum() -> None:
    s = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    assert float(run(s, max_violation=True)) <= float(run(s)) + 1e-6


def test_rejects_fewer_columns_than_rows() -> None:
    from repmix.sdk import InputError

    with pytest.raises(InputError, match="B_b >= B_a"):
        run(torch.randn(4, 3))
