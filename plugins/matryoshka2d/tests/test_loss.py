"""The 2D loss on a real (tiny) model: reductions, the detached teacher, sampling, weights."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import (
    InputError,
    LocatedConfig,
    LossInputs,
    PipelineError,
    build_model,
    parse_yaml,
    plan_model,
)
from repmix_matryoshka2d.loss import layer_weight

ANCHORS = ["a man is riding a horse", "the dog is eating food", "two women are talking", "a red car"]
POSITIVES = ["a man rides a horse", "a dog eats", "women talk", "the car is red"]
# two pairs are enough where many forward passes are made
SHORT = {"query": ANCHORS[:2], "document": POSITIVES[:2]}

YAML = """
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {model}, max_length: 32}}
      encoder:   {{type: hf-transformer, model: {model}, granularities: {{token: -1, embeddings: 0}}}}
      poolers:   {{sentence: {{type: {pooler}}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: matryoshka2d, on: similarity, base: {{type: mnrl}}, {options}}}
"""


def build(model_dir: str, options: str, pooler: str = "mean", encoder_extra: str = ""):  # type: ignore[no-untyped-def]
    text = YAML.format(model=model_dir, options=options, pooler=pooler)
    data, lines = parse_yaml(text, "m.yaml")
    return build_model(plan_model(LocatedConfig(data, lines, "m.yaml")))


def test_reduces_to_the_base_loss(tiny_bert_dir: str) -> None:
    """KL off, last layer only, full width: exactly the base loss on the tower's own alignment."""
    model = build(tiny_bert_dir, "dims: [32], n_layers_per_step: 0, kl_temperature: 0").eval()
    with torch.no_grad():
        out = model({"query": ANCHORS, "document": POSITIVES})
        base = model.losses[0].base
        expected = base(LossInputs(out.alignments, out.outputs)).value
    assert float(out.loss) == pytest.approx(float(expected), abs=1e-6)


def test_the_model_asks_the_encoder_for_layers_the_loss_needs(tiny_bert_dir: str) -> None:
    """No granularity reads a non-final layer, yet the training forward gets every layer (Loss.needs_layers)."""
    def last_layer_only(options: str):  # type: ignore[no-untyped-def]
        text = YAML.format(model=tiny_bert_dir, options=options, pooler="mean")
        data, lines = parse_yaml(text.replace(", granularities: {token: -1, embeddings: 0}", ""), "m.yaml")
        return build_model(plan_model(LocatedConfig(data, lines, "m.yaml"))).train()

    model = last_layer_only("dims: [32, 16]")
    assert model.losses[0].needs_layers
    assert model.encode_batch("query", ANCHORS[:1]).layers is None  # plain encoding stays cheap
    torch.manual_seed(0)
    out = model(SHORT)
    assert out.outputs["query"].layers is not None and torch.isfinite(out.loss)
    assert "loss0.Matryoshka2dLoss.sampled_layer" in out.logs
    plain = last_layer_only("dims: [32, 16], n_layers_per_step: 0")
    assert not plain.losses[0].needs_layers and plain(SHORT).outputs["query"].layers is None


def test_kl_teacher_is_detached(tiny_bert_dir: str) -> None:
    """With only the KL term, the last transformer block (which only the teacher uses) gets no gradient."""
    model = build(
        tiny_bert_dir,
        "dims: [32], n_layers_per_step: -1, last_layer_weight: 0, prior_layers_weight: 0, kl_weight: 1",
    ).eval()
    out = model({"query": ANCHORS, "document": POSITIVES})
    assert float(out.loss.detach()) > 0
    out.loss.backward()
    enc = model.tower("query").encoder.model
    last = [p.grad for p in enc.encoder.layer[-1].parameters()]
    assert all(g is None or float(g.abs().max()) == 0.0 for g in last)
    first = [p.grad for p in enc.encoder.layer[0].parameters()]
    assert any(g is not None and float(g.abs().max()) > 0 for g in first)


def test_training_samples_one_layer_and_dim_reproducibly(tiny_bert_dir: str) -> None:
    model = build(tiny_bert_dir, "dims: [32, 16, 8]").train()
    values, layers = [], []
    for _ in range(2):
        torch.manual_seed(3)
        with torch.no_grad():
            out = model(SHORT)
        values.append(float(out.loss))
        layers.append(out.logs["loss0.Matryoshka2dLoss.sampled_layer"])
    assert values[0] == values[1] and layers[0] == layers[1]
    assert layers[0] in {0.0, 1.0, 2.0}
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        with torch.no_grad():
            seen.add(model(SHORT).logs["loss0.Matryoshka2dLoss.sampled_layer"])
    assert seen == {0.0, 1.0, 2.0}  # every prior layer 0..N-2 of the 3-block model gets drawn


def test_eval_value_is_the_expectation_of_the_training_estimator(tiny_bert_dir: str) -> None:
    """In eval mode nothing is sampled and the value is E[training loss] over the draws."""
    model = build(tiny_bert_dir, "dims: [32, 16], n_dims_per_step: 1, n_layers_per_step: 1").eval()
    with torch.no_grad():
        expectation = float(model(SHORT).loss)
        model.losses[0].train()  # sample, with the encoder's dropout still off
        outcomes: dict[float, float] = {}
        for seed in range(120):
            torch.manual_seed(seed)
            value = float(model(SHORT).loss)
            outcomes[round(value, 5)] = value
            if len(outcomes) == 12:
                break
    # 2 dims at the last layer x (3 prior layers x 2 dims): 12 equally likely outcomes
    assert len(outcomes) == 12
    assert sum(outcomes.values()) / 12 == pytest.approx(expectation, rel=1e-5)


def test_repool_recomputes_the_tower_pooler_from_a_layer(tiny_bert_dir: str) -> None:
    from repmix_matryoshka2d.layers import repool
    from repmix_matryoshka2d.poolers import pool_tokens

    model = build(tiny_bert_dir, "dims: [32]", pooler="cls").eval()
    with torch.no_grad():
        encoded = model.encode_batch("query", ANCHORS, output_layers=True)
        assert encoded.layers is not None and len(encoded.layers) == 4
        torch.testing.assert_close(repool(model.tower("query"), "query", "sentence", encoded, -1).hidden, encoded["sentence"].hidden)
        mask = encoded["token"].full_mask()
        torch.testing.assert_close(
            repool(model.tower("query"), "query", "sentence", encoded, 1).hidden, pool_tokens(encoded.layers[1], mask, "cls")
        )
        with pytest.raises(InputError, match="produced by the encoder"):
            repool(model.tower("query"), "query", "token", encoded, 1)


def test_layer_weights() -> None:
    assert layer_weight("uniform", 0) == 1.0
    assert layer_weight("linear", 3) == pytest.approx(0.25)
    assert layer_weight("log", 0) == 1.0
    assert layer_weight("inverse", 4) == 0.25
    with pytest.raises(InputError):
        layer_weight("inverse", 0)


def build_unchecked(model_dir: str, options: str, **loss_options: object):  # type: ignore[no-untyped-def]
    """Plan a valid config, then change the loss's options past ``repmix check`` (as programmatic use can)."""
    text = YAML.format(model=model_dir, options=options, pooler="mean")
    data, lines = parse_yaml(text, "m.yaml")
    plan = plan_model(LocatedConfig(data, lines, "m.yaml"))
    loss = plan.losses[0].component
    loss.config = loss.config.model_copy(update=loss_options)
    return build_model(plan)


def test_runtime_errors_are_clear(tiny_bert_dir: str) -> None:
    """``repmix check`` rejects these (test_check_errors.py); a model built past it fails at the first forward."""
    with pytest.raises(PipelineError, match=r"dims \[64\] exceed the width 32"):
        build(tiny_bert_dir, "dims: [64, 8], n_layers_per_step: 0")
    too_wide = build_unchecked(tiny_bert_dir, "dims: [32, 8], n_layers_per_step: 0", dims=[64, 8])
    with pytest.raises(InputError, match=r"dims \[64\] exceed the width 32"):
        too_wide({"query": ANCHORS, "document": POSITIVES})
    with pytest.raises(PipelineError, match=r"prior_layers \[3\] are not below the last layer"):
        build(tiny_bert_dir, "dims: [32], prior_layers: [1, 3]")
    bad_layer = build_unchecked(tiny_bert_dir, "dims: [32], prior_layers: [1, 2]", prior_layers=[1, 3])
    with pytest.raises(InputError, match=r"prior_layers \[3\] are not below the last layer"):
        bad_layer({"query": ANCHORS, "document": POSITIVES})
