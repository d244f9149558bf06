"""Faithfulness: ``matryoshka2d`` equals sentence-transformers' ``Matryoshka2dLoss`` on the same batch.

Reference: sentence-transformers 6.2 (``Matryoshka2dLoss(model, MultipleNegativesRankingLoss(model),
dims, n_layers_per_step=-1, n_dims_per_step=-1)``), the ST pipeline Transformer -> Pooling(mean)
-> Normalize built on the same weights, in eval mode (no dropout). With sampling disabled the two
compute the same sum: every dim at the last layer, every prior layer 0..N-2 (uniform weights),
and the KL term at T = 0.3 against the detached last layer. Tolerance: 1e-5 absolute on the loss,
1e-4 relative on the gradients of the encoder's weights.

Also checked against sentence-transformers' parts: ``MatryoshkaLoss`` alone (``n_layers_per_step: 0``)
and ``AdaptiveLayerLoss`` alone (one dim = the full width, ``layer_weighting: linear``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from repmix.sdk import LocatedConfig, build_model, parse_yaml, plan_model

ANCHORS = ["a man is riding a horse", "the dog is eating food", "two women are talking", "a red car on the street"]
POSITIVES = ["a man rides a horse", "a dog eats", "women are talking to one another", "the car is red"]

YAML = """
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {model}, max_length: 64}}
      encoder:   {{type: hf-transformer, model: {model}, granularities: {{token: -1, embeddings: 0}}}}
      poolers:   {{sentence: {{type: mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: matryoshka2d, on: similarity, base: {{type: mnrl, scale: 20.0}}, {options}}}
"""


def repmix_model(model_dir: str, options: str):  # type: ignore[no-untyped-def]
    data, lines = parse_yaml(YAML.format(model=model_dir, options=options), "m2d.yaml")
    return build_model(plan_model(LocatedConfig(data, lines, "m2d.yaml"))).eval()


def st_model(model_dir: str):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformer = Transformer(model_dir, max_seq_length=64)
        model = SentenceTransformer(
            modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()], device="cpu"
        )
    return model.eval()


def st_value_and_grads(model, loss) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    features = [model.tokenize(ANCHORS), model.tokenize(POSITIVES)]
    model.zero_grad()
    value = loss(features, None)
    value.backward()
    grads = {n.split(".model.", 1)[1]: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return value.detach(), grads


def repmix_value_and_grads(model) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    model.zero_grad()
    out = model({"query": ANCHORS, "document": POSITIVES})
    out.loss.backward()
    prefix = "towers.query.encoder.model."
    grads = {n[len(prefix):]: p.grad.clone() for n, p in model.named_parameters() if n.startswith(prefix) and p.grad is not None}
    return out.loss.detach(), grads


def assert_same(ours: tuple, theirs: tuple) -> None:  # type: ignore[type-arg]
    (v_ours, g_ours), (v_theirs, g_theirs) = ours, theirs
    assert abs(float(v_ours) - float(v_theirs)) <= 1e-5, (float(v_ours), float(v_theirs))
    assert set(g_ours) == set(g_theirs)
    for name in g_theirs:
        torch.testing.assert_close(g_ours[name], g_theirs[name], rtol=1e-4, atol=1e-6, msg=name)


def test_matches_st_matryoshka2d_on_tiny_bert(tiny_bert_dir: str) -> None:
    from sentence_transformers.sentence_transformer.losses import (
        Matryoshka2dLoss,
        MultipleNegativesRankingLoss,
    )

    dims = [32, 16, 8]
    st = st_model(tiny_bert_dir)
    reference = Matryoshka2dLoss(st, MultipleNegativesRankingLoss(st), dims, n_layers_per_step=-1, n_dims_per_step=-1)
    theirs = st_value_and_grads(st, reference)
    ours = repmix_value_and_grads(repmix_model(tiny_bert_dir, "dims: [32, 16, 8], n_layers_per_step: -1, n_dims_per_step: -1"))
    assert_same(ours, theirs)
    # not vacuous: the KL and prior layers contribute
    plain = repmix_value_and_grads(repmix_model(tiny_bert_dir, "dims: [32], n_layers_per_step: 0"))
    assert abs(float(plain[0]) - float(theirs[0])) > 1e-2


def test_matches_st_matryoshka_loss_alone(tiny_bert_dir: str) -> None:
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    st = st_model(tiny_bert_dir)
    reference = MatryoshkaLoss(st, MultipleNegativesRankingLoss(st), [32, 24, 8], matryoshka_weights=[1.0, 0.5, 2.0])
    theirs = st_value_and_grads(st, reference)
    ours = repmix_value_and_grads(
        repmix_model(tiny_bert_dir, "dims: [8, 32, 24], dim_weights: [2.0, 1.0, 0.5], n_dims_per_step: -1, n_layers_per_step: 0")
    )
    assert_same(ours, theirs)


def test_matches_st_adaptive_layer_loss_alone(tiny_bert_dir: str) -> None:
    from sentence_transformers.sentence_transformer.losses import (
        AdaptiveLayerLoss,
        MultipleNegativesRankingLoss,
    )

    st = st_model(tiny_bert_dir)
    reference = AdaptiveLayerLoss(
        st, MultipleNegativesRankingLoss(st), n_layers_per_step=-1, last_layer_weight=0.7,
        prior_layers_weight=1.3, kl_div_weight=2.0, kl_temperature=0.5, layer_weighting="linear",
    )
    theirs = st_value_and_grads(st, reference)
    ours = repmix_value_and_grads(
        repmix_model(
            tiny_bert_dir,
            "dims: [32], n_layers_per_step: -1, last_layer_weight: 0.7, prior_layers_weight: 1.3, "
            "kl_weight: 2.0, kl_temperature: 0.5, layer_weighting: linear",
        )
    )
    assert_same(ours, theirs)


@pytest.mark.slow
def test_matches_st_matryoshka2d_on_minilm(minilm_dir) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers.sentence_transformer.losses import (
        Matryoshka2dLoss,
        MultipleNegativesRankingLoss,
    )

    dims = [384, 256, 128, 64, 32]
    st = st_model(str(minilm_dir))
    reference = Matryoshka2dLoss(st, MultipleNegativesRankingLoss(st), dims, n_layers_per_step=-1, n_dims_per_step=-1)
    with torch.no_grad():
        value = reference([st.tokenize(ANCHORS), st.tokenize(POSITIVES)], None)
        ours = repmix_model(
            "all-MiniLM-L6-v2", "dims: [384, 256, 128, 64, 32], n_layers_per_step: -1, n_dims_per_step: -1"
        )({"query": ANCHORS, "document": POSITIVES}).loss
    assert abs(float(ours) - float(value)) <= 1e-5, (float(ours), float(value))
