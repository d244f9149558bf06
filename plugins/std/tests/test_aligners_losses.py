"""Unit tests of the aligners (cosine, dot, maxsim) and losses (info-nce, mnrl)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from repmix.sdk import (
    Alignment,
    Granularity,
    GranularitySpec,
    InputError,
    LossInputs,
    PipelineError,
    Runtime,
)
from repmix_std.aligners import (
    EMPTY_DOCUMENT_SCORE,
    CosineAligner,
    DotAligner,
    MaxSimAligner,
)
from repmix_std.losses import InfoNCELoss, MultipleNegativesRankingLoss

POOLED = GranularitySpec("pooled", 8)
SEQUENCE = GranularitySpec("sequence", 8)


def test_cosine_and_dot_scores() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 8, generator=g), torch.randn(5, 8, generator=g)
    cos = CosineAligner(CosineAligner.Config(), Runtime())(Granularity(a), Granularity(b)).scores
    dot = DotAligner(DotAligner.Config(), Runtime())(Granularity(a), Granularity(b)).scores
    assert cos.shape == dot.shape == (3, 5)
    torch.testing.assert_close(dot, a @ b.T)
    torch.testing.assert_close(cos, F.cosine_similarity(a.unsqueeze(1), b.unsqueeze(0), dim=-1))


def test_accepts_reject_impossible_pairs() -> None:
    CosineAligner.signature(CosineAligner.Config(), POOLED, POOLED)
    MaxSimAligner.signature(MaxSimAligner.Config(), SEQUENCE, SEQUENCE)
    assert MaxSimAligner.accepts == ("sequence", "sequence")
    with pytest.raises(PipelineError, match="sequence"):
        MaxSimAligner.signature(MaxSimAligner.Config(), POOLED, POOLED)
    with pytest.raises(PipelineError, match="pooled"):
        CosineAligner.signature(CosineAligner.Config(), SEQUENCE, POOLED)
    with pytest.raises(PipelineError, match="dimensions"):
        DotAligner.signature(DotAligner.Config(), POOLED, GranularitySpec("pooled", 4))


def test_maxsim_chunking_does_not_change_scores() -> None:
    g = torch.Generator().manual_seed(1)
    q, d = torch.randn(3, 4, 8, generator=g), torch.randn(11, 6, 8, generator=g)
    q_mask = torch.rand(3, 4, generator=g) > 0.3
    d_mask = torch.rand(11, 6, generator=g) > 0.3
    q_mask[:, 0] = True
    d_mask[:, 0] = True
    whole = MaxSimAligner(MaxSimAligner.Config(), Runtime())(Granularity(q, q_mask), Granularity(d, d_mask))
    for budget in (1, 12, 100, 200):
        chunked = MaxSimAligner(MaxSimAligner.Config(chunk_elements=budget), Runtime())(
            Granularity(q, q_mask), Granularity(d, d_mask)
        )
        torch.testing.assert_close(chunked.scores, whole.scores)


def test_maxsim_document_without_tokens_scores_lowest() -> None:
    q = torch.randn(2, 3, 4)
    d = torch.randn(3, 2, 4)
    d_mask = torch.tensor([[True, True], [False, False], [True, False]])
    scores = MaxSimAligner(MaxSimAligner.Config(), Runtime())(Granularity(q), Granularity(d, d_mask)).scores
    assert torch.all(scores[:, 1] == EMPTY_DOCUMENT_SCORE)
    assert torch.all(scores[:, [0, 2]] > EMPTY_DOCUMENT_SCORE)
    assert torch.isfinite(scores).all()


def test_maxsim_gradients_flow_and_skip_padding() -> None:
    q = torch.randn(2, 3, 4, requires_grad=True)
    d = torch.randn(2, 5, 4, requires_grad=True)
    q_mask = torch.tensor([[True, True, False], [True, False, False]])
    d_mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    aligner = MaxSimAligner(MaxSimAligner.Config(), Runtime())
    aligner(Granularity(q, q_mask), Granularity(d, d_mask)).scores.sum().backward()
    assert q.grad is not None and d.grad is not None
    assert torch.all(q.grad[~q_mask] == 0)
    assert torch.all(d.grad[~d_mask] == 0)
    assert q.grad[q_mask].abs().sum() > 0


def scores_loss(loss, scores: torch.Tensor):  # type: ignore[no-untyped-def]
    return loss(LossInputs({"a": Alignment(scores)}, {}))


def test_info_nce_perfect_alignment_has_low_loss_and_full_accuracy() -> None:
    loss = InfoNCELoss(InfoNCELoss.Config(), Runtime())
    good = scores_loss(loss, torch.eye(4) * 2 - 1)
    bad = scores_loss(loss, 1 - torch.eye(4) * 2)
    assert good.logs["accuracy"] == 1.0
    assert bad.logs["accuracy"] == 0.0
    assert good.value < 1e-6 < bad.value


def test_info_nce_learnable_temperature_is_clamped() -> None:
    loss = InfoNCELoss(InfoNCELoss.Config(learnable_temperature=True, max_scale=100.0), Runtime())
    with torch.no_grad():
        loss.log_inv_temperature.fill_(math.log(1000.0))
    assert loss.scale().item() == pytest.approx(100.0, rel=1e-5)
    assert scores_loss(loss, torch.eye(3)).logs["temperature"] == pytest.approx(0.01, rel=1e-5)
    with torch.no_grad():
        loss.log_inv_temperature.fill_(-5.0)
    assert loss.scale().item() == pytest.approx(1.0)


def test_info_nce_config_checks() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        InfoNCELoss.Config(temperature=0)
    with pytest.raises(ValidationError, match="max_scale"):
        InfoNCELoss.Config(temperature=0.001, learnable_temperature=True)


@pytest.mark.parametrize("cls", [InfoNCELoss, MultipleNegativesRankingLoss])
def test_losses_need_at_least_as_many_columns_as_rows(cls) -> None:  # type: ignore[no-untyped-def]
    loss = cls(cls.Config(), Runtime())
    with pytest.raises(InputError, match="columns"):
        scores_loss(loss, torch.zeros(4, 3))
    assert torch.isfinite(scores_loss(loss, torch.rand(3, 7)).value)


def test_mnrl_is_cross_entropy_of_scaled_scores() -> None:
    scores = torch.rand(5, 8) * 2 - 1
    out = scores_loss(MultipleNegativesRankingLoss(MultipleNegativesRankingLoss.Config(), Runtime()), scores)
    torch.testing.assert_close(out.value, F.cross_entropy(scores * 20.0, torch.arange(5)))
    assert set(out.logs) == {"accuracy", "positive_score"}
    assert out.logs["positive_score"] == pytest.approx(float(scores.diagonal().mean()), rel=1e-5)


def test_mnrl_warns_once_on_scores_that_are_not_cosines() -> None:
    loss = MultipleNegativesRankingLoss(MultipleNegativesRankingLoss.Config(), Runtime())
    with pytest.warns(UserWarning, match="cosine"):
        scores_loss(loss, torch.rand(3, 3) * 10 + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores_loss(loss, torch.rand(3, 3) * 10 + 2)
    quiet = MultipleNegativesRankingLoss(MultipleNegativesRankingLoss.Config(), Runtime())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores_loss(quiet, torch.rand(3, 3) * 2 - 1)
