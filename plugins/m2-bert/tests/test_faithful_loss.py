"""The single-sample retrieval loss (``m2-bert.orthogonal-projection``) against sentence-transformers and the paper.

References and tolerances:

* sentence-transformers' ``CosineSimilarityLoss`` (MSE of the cosine against the label, what the
  official ``training_functions.py`` trains with) on the same embeddings and labels: value 1e-6,
  gradients w.r.t. the embeddings 1e-6;
* the paper's stated invariant: the loss is exactly 0 when cos(q, d⁺) = 1 and cos(q, d⁻) = 0;
* single-sample: the loss of a batch is the mean of its batch-of-one losses, and so are the gradients.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from repmix.sdk import Alignment, Encoded, Granularity, InputError, LossInputs, Runtime
from repmix.sdk.conformance import Case, conformance_cases
from repmix_m2_bert.loss import OrthogonalProjectionLoss, orthogonal_projection_loss


def _loss() -> OrthogonalProjectionLoss:
    return OrthogonalProjectionLoss(OrthogonalProjectionLoss.Config(), Runtime())


def _inputs(q: torch.Tensor, d: torch.Tensor, labels: torch.Tensor | None) -> LossInputs:
    scores = F.normalize(q, dim=-1) @ F.normalize(d, dim=-1).T  # std.cosine's score matrix
    outputs = {"query": Encoded({"sentence": Granularity(q)}), "document": Encoded({"sentence": Granularity(d)})}
    return LossInputs(
        {"similarity": Alignment(scores)}, outputs, labels, {"similarity": (("query", "sentence"), ("document", "sentence"))}
    )


def test_equals_sentence_transformers_cosine_similarity_loss() -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    q1 = torch.randn(7, 24, generator=g, dtype=torch.float64, requires_grad=True)
    d1 = torch.randn(7, 24, generator=g, dtype=torch.float64, requires_grad=True)
    q2, d2 = q1.detach().clone().requires_grad_(), d1.detach().clone().requires_grad_()
    ours = _loss()(_inputs(q1, d1, labels)).value
    reference = CosineSimilarityLoss(None).compute_loss_from_embeddings([q2, d2], labels)  # type: ignore[arg-type]
    torch.testing.assert_close(ours, reference.to(ours.dtype), atol=1e-6, rtol=0)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(q1.grad, q2.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(d1.grad, d2.grad, atol=1e-6, rtol=0)


def test_zero_exactly_when_positives_align_and_negatives_are_orthogonal() -> None:
    q = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    d = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.5, 0.0], [7.0, 0.0, 1.0]])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])  # d⁺ parallel to q, d⁻ orthogonal to q
    out = _loss()(_inputs(q, d, labels))
    assert float(out.value) == pytest.approx(0.0, abs=1e-12)
    assert out.logs["cos_pos"] == pytest.approx(1.0) and out.logs["cos_neg"] == pytest.approx(0.0)
    # and positive otherwise: a negative at cosine 1 costs exactly 1 / B
    worse = _loss()(_inputs(q, torch.cat([d[:1], q[1:2], d[2:]]), labels)).value
    assert float(worse) == pytest.approx(1.0 / 4, abs=1e-7)


def test_batch_loss_is_the_mean_of_single_sample_losses() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(6, 16, generator=g, requires_grad=True)
    d = torch.randn(6, 16, generator=g, requires_grad=True)
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    batch = _loss()(_inputs(q, d, labels)).value
    (gq_batch, gd_batch) = torch.autograd.grad(batch, (q, d))
    singles = [_loss()(_inputs(q[i : i + 1], d[i : i + 1], labels[i : i + 1])).value for i in range(6)]
    torch.testing.assert_close(batch, torch.stack(singles).mean(), atol=1e-6, rtol=0)
    gq, gd = torch.autograd.grad(torch.stack(singles).mean(), (q, d))
    torch.testing.assert_close(gq_batch, gq, atol=1e-6, rtol=0)
    torch.testing.assert_close(gd_batch, gd, atol=1e-6, rtol=0)
    # the in-batch off-diagonal scores play no part
    scores = F.normalize(q, dim=-1) @ F.normalize(d, dim=-1).T
    torch.testing.assert_close(batch, orthogonal_projection_loss(scores.diagonal(), labels))


def test_first_target_column_is_the_label() -> None:
    g = torch.Generator().manual_seed(2)
    q, d = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    labels = torch.tensor([1.0, 0.0, 1.0])
    two = torch.stack([labels, torch.tensor([9.0, 9.0, 9.0])], dim=1)
    torch.testing.assert_close(_loss()(_inputs(q, d, two)).value, _loss()(_inputs(q, d, labels)).value)


def test_bad_inputs_are_one_clear_error() -> None:
    q, d = torch.randn(3, 8), torch.randn(3, 8)
    with pytest.raises(InputError, match="needs targets"):
        _loss()(_inputs(q, d, None))
    with pytest.raises(InputError, match="2 labels for 3 pairs"):
        _loss()(_inputs(q, d, torch.tensor([1.0, 0.0])))
    with pytest.raises(InputError, match="pairing row i with column i"):
        _loss()(_inputs(torch.randn(4, 8), torch.randn(2, 8), torch.ones(4)))


CASES = [
    Case("loss", "m2-bert.orthogonal-projection", targets=torch.tensor([1.0, 0.0, 0.0, 1.0]), bad_configs=[{"k": 1}]),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
