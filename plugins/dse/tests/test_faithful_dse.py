"""Faithfulness of dse against the paper's stated invariants and hand-computed values.

* the loss: α = 0 leaves exactly the task loss (MSE / BCE-with-logits written out by hand);
  y_pred = z makes the distillation term 0; a hand-computed value of the mixed loss;
* the binary teacher conversion z = z1 − z0 (sigmoid(z) is the teacher's class-1 softmax);
* the pooler: position 0 is ignored, and on a real (tiny) BERT it equals the official
  ``BertSumConcatTopHiddenEmbeddingsPooler`` formula ``mean_{t>=1, mask} cat(h[-4:])``
  computed from transformers' own hidden states (|diff| <= 1e-6);
* the pair head: u∘v and |u−v| are symmetric in (u, v); scores[i, j] = MLP([a_i; b_j; a_i∘b_j; |a_i−b_j|]).
"""

from __future__ import annotations

import math

import pytest
import torch
from repmix.sdk import (
    Alignment,
    Encoded,
    Granularity,
    GranularitySpec,
    LossInputs,
    Runtime,
)
from repmix_dse.aligners import PairHeadAligner, pair_features
from repmix_dse.loss import DSEDistillLoss, binary_teacher_logit
from repmix_dse.poolers import TopLayersMeanPooler

TOL = 1e-6


def _loss(y_pred: list[float], targets: torch.Tensor, **cfg: object) -> float:
    scores = torch.full((len(y_pred), len(y_pred)), -5.0)
    scores[range(len(y_pred)), range(len(y_pred))] = torch.tensor(y_pred)
    loss = DSEDistillLoss(DSEDistillLoss.Config(**cfg), Runtime())
    return float(loss(LossInputs({"pairs": Alignment(scores)}, {}, targets=targets)).value)


def test_hand_computed_mixed_loss() -> None:
    # y_pred = (0.5, -1), y = (1, 0), z = (0, -0.5), α = 0.5:
    # task = ((0.5-1)² + (-1-0)²)/2 = 0.625; distill = (0.5² + 0.5²)/2 = 0.25; total = 0.4375
    targets = torch.tensor([[1.0, 0.0], [0.0, -0.5]])
    assert _loss([0.5, -1.0], targets, alpha=0.5) == pytest.approx(0.4375, abs=TOL)
    assert _loss([0.5, -1.0], targets, alpha=0.25) == pytest.approx(0.75 * 0.625 + 0.25 * 0.25, abs=TOL)


def test_alpha_zero_is_the_pure_task_loss() -> None:
    y_pred = [0.3, -1.2, 2.0]
    y = [1.0, 0.0, 1.0]
    z = [9.0, -9.0, 4.0]  # any teacher: ignored at α = 0
    targets = torch.tensor([y, z]).T
    mse = sum((p - t) ** 2 for p, t in zip(y_pred, y, strict=True)) / 3
    assert _loss(y_pred, targets, alpha=0.0, task="mse") == pytest.approx(mse, abs=TOL)
    bce = -sum(t * math.log(1 / (1 + math.exp(-p))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-p)))
               for p, t in zip(y_pred, y, strict=True)) / 3
    assert _loss(y_pred, targets, alpha=0.0, task="bce") == pytest.approx(bce, abs=TOL)


def test_prediction_equal_to_teacher_gives_zero_distillation() -> None:
    z = [0.7, -0.2, 0.1, 1.5]
    targets = torch.tensor([[0.0] * 4, z]).T
    assert _loss(z, targets, alpha=1.0) == pytest.approx(0.0, abs=TOL)
    assert _loss(z, torch.tensor(z), alpha=1.0, task="none") == pytest.approx(0.0, abs=TOL)
    # α = 0.5: only the task half is left
    assert _loss(z, targets, alpha=0.5) == pytest.approx(0.5 * sum(v * v for v in z) / 4, abs=TOL)


def test_binary_teacher_logit_conversion() -> None:
    logits = torch.tensor([[0.2, 1.7], [2.0, -1.0], [0.0, 0.0]])
    z = binary_teacher_logit(logits)
    torch.testing.assert_close(z, torch.tensor([1.5, -3.0, 0.0]))
    torch.testing.assert_close(torch.sigmoid(z), logits.softmax(-1)[:, 1])


def _pooler(**cfg: object) -> TopLayersMeanPooler:
    return TopLayersMeanPooler(TopLayersMeanPooler.Config(**cfg), Runtime(input=GranularitySpec("sequence", 8)))


def test_pooler_ignores_position_zero() -> None:
    g = torch.Generator().manual_seed(0)
    layers = tuple(torch.randn(2, 5, 8, generator=g) for _ in range(5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    pooler = _pooler(layers=4)
    out = pooler(Encoded({"token": Granularity(layers[-1], mask)}, layers=layers)).hidden
    changed = tuple(t.clone() for t in layers)
    for t in changed:
        t[:, 0] += 100.0
    torch.testing.assert_close(pooler(Encoded({"token": Granularity(changed[-1], mask)}, layers=changed)).hidden, out)
    cat = torch.cat(layers[-4:], dim=-1)
    torch.testing.assert_close(out[0], cat[0, 1:5].mean(0))
    torch.testing.assert_close(out[1], cat[1, 1:3].mean(0))
    assert out.shape == (2, 32)


def test_pooler_equals_the_official_formula_on_bert(tiny_bert_dir: str) -> None:
    from repmix.sdk import LocatedConfig, build_model, parse_yaml, plan_model
    from transformers import AutoModel, AutoTokenizer

    text = f"""
model:
  towers:
    text:
      tokenizer: {{type: std.hf-tokenizer, model: '{tiny_bert_dir}'}}
      encoder:   {{type: std.hf-transformer, model: '{tiny_bert_dir}'}}
      poolers:   {{sentence: {{type: dse.top-layers-mean, layers: 4}}}}
"""
    data, lines = parse_yaml(text, "dse.yaml")
    model = build_model(plan_model(LocatedConfig(data, lines, "dse.yaml")))
    sentences = ["the man is riding a horse", "hello world", "a dog"]
    ours = torch.from_numpy(model.encode(sentences, tower="text", sort_by_length=False))

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    bert = AutoModel.from_pretrained(tiny_bert_dir).eval()
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch, output_hidden_states=True).hidden_states
    cat = torch.cat(hidden[-4:], dim=-1)[:, 1:]  # BertSumConcatTopHiddenEmbeddingsPooler
    m = batch["attention_mask"][:, 1:].unsqueeze(-1).float()
    reference = (cat * m).sum(1) / m.sum(1)
    assert ours.shape == (3, 4 * 32)
    torch.testing.assert_close(ours, reference, rtol=0, atol=TOL)


def test_pair_features_are_symmetric_and_the_head_scores_every_pair() -> None:
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    f_uv, f_vu = pair_features(u, v), pair_features(v, u)
    torch.testing.assert_close(f_uv[:, 12:], f_vu[:, 12:])  # u∘v and |u−v|
    torch.testing.assert_close(f_uv[:, :6], f_vu[:, 6:12])
    torch.manual_seed(0)
    head = PairHeadAligner(
        PairHeadAligner.Config(hidden=5, chunk_pairs=2), Runtime(sides=(GranularitySpec("pooled", 6),) * 2)
    ).eval()
    scores = head(Granularity(u), Granularity(v[:2])).scores
    assert scores.shape == (3, 2)
    lin1, lin2 = head.head[1], head.head[3]
    for i in range(3):
        for j in range(2):
            f = torch.cat([u[i], v[j], u[i] * v[j], (u[i] - v[j]).abs()])
            expected = lin2(torch.relu(lin1(f)))[0]
            torch.testing.assert_close(scores[i, j], expected)
