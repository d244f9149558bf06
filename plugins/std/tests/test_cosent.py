"""Faithfulness of ``cosent``: equal to sentence-transformers' ``CoSENTLoss`` on the same embeddings and labels."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import Alignment, LossInputs, Runtime
from repmix_std.losses import CoSENTLoss


def _loss(a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, scale: float) -> torch.Tensor:
    scores = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T
    loss = CoSENTLoss(CoSENTLoss.Config(scale=scale), Runtime())
    return loss(LossInputs({"sim": Alignment(scores)}, {}, targets=labels)).value


@pytest.mark.parametrize("scale", [20.0, 5.0])
@pytest.mark.parametrize("ties", [False, True])
def test_cosent_equals_sentence_transformers(scale: float, ties: bool) -> None:
    pytest.importorskip("sentence_transformers")
    try:
        from sentence_transformers.sentence_transformer.losses import CoSENTLoss as Reference
    except ImportError:  # sentence-transformers < 5
        from sentence_transformers.losses import CoSENTLoss as Reference
    from sentence_transformers import util

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 16, generator=g), torch.randn(12, 16, generator=g)
    labels = torch.rand(12, generator=g)
    if ties:
        labels = (labels * 4).round() / 4  # graded scores with ties, as STS gold scores have
    reference = Reference.__new__(Reference)  # no SentenceTransformer needed to score given embeddings
    torch.nn.Module.__init__(reference)
    reference.similarity_fct, reference.scale = util.pairwise_cos_sim, scale
    expected = reference.compute_loss_from_embeddings([a, b], labels)
    torch.testing.assert_close(_loss(a, b, labels, scale), expected, rtol=1e-5, atol=1e-5)


def test_cosent_reads_only_the_order_of_the_targets() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    labels = torch.rand(8, generator=g)
    torch.testing.assert_close(_loss(a, b, labels, 20.0), _loss(a, b, labels * 5 - 1, 20.0))
