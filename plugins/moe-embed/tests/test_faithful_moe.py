"""Faithfulness of moe-embed against independent references.

1. Function preservation (the paper's claim, checked in the official code by construction):
   at initialisation a model assembled from YAML with ``moe-embed.domain-tokenizer`` +
   ``moe-embed.moe-transformer`` + std ``mean`` equals the same pretrained encoder loaded by
   std's ``hf-transformer`` (+ ``mean``), whatever the routing — on the tiny BERT and on
   all-MiniLM-L6-v2 (max abs difference <= 1e-5).
2. Enforced routing: perturbing expert k changes exactly the examples routed to k.
3. The model's loss through std's ``mnrl`` equals sentence-transformers'
   ``MultipleNegativesRankingLoss`` on the same embeddings (|diff| <= 1e-5).
4. The number of feed-forward FLOPs per token is unchanged (one expert per token).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import LocatedConfig, build_model, parse_yaml, plan_model
from torch import nn

TEXTS = ["hello world", "CC(=O)O", "a longer sentence about the molecule and water", "C1=CC=CC=C1", "one"]
TOLERANCE = 1e-5


def _model(yaml_text: str):  # type: ignore[no-untyped-def]
    data, lines = parse_yaml(yaml_text, "test.yaml")
    torch.manual_seed(0)
    model = build_model(plan_model(LocatedConfig(data, lines, "test.yaml")))
    model.eval()
    return model


def _pair(model_dir: str, layers: str = "all") -> tuple:  # type: ignore[type-arg]
    moe = _model(
        f"""
model:
  towers:
    text:
      tokenizer: {{type: moe-embed.domain-tokenizer, model: '{model_dir}', domains: [text, molecule, other]}}
      encoder:   {{type: moe-embed.moe-transformer, model: '{model_dir}', layers: {layers}}}
      poolers:   {{sentence: {{type: std.mean}}}}
"""
    )
    plain = _model(
        f"""
model:
  towers:
    text:
      tokenizer: {{type: std.hf-tokenizer, model: '{model_dir}'}}
      encoder:   {{type: std.hf-transformer, model: '{model_dir}'}}
      poolers:   {{sentence: {{type: std.mean}}}}
"""
    )
    return moe, plain


@pytest.mark.parametrize("layers", ["all", "[-1]"])
def test_moe_equals_the_pretrained_encoder_at_initialisation_for_any_routing(tiny_bert_dir: str, layers: str) -> None:
    moe, plain = _pair(tiny_bert_dir, layers)
    reference = torch.from_numpy(plain.encode(TEXTS, tower="text"))
    for tags in (["text"] * 5, ["molecule"] * 5, ["text", "molecule", "other", "molecule", "text"]):
        ours = torch.from_numpy(moe.encode([f"{t}\t{x}" for t, x in zip(tags, TEXTS, strict=True)], tower="text"))
        torch.testing.assert_close(ours, reference, rtol=0, atol=TOLERANCE)


def test_moe_minilm_equals_minilm_at_initialisation(minilm_dir: Path) -> None:
    moe, plain = _pair(str(minilm_dir))
    reference = torch.from_numpy(plain.encode(TEXTS, tower="text"))
    ours = torch.from_numpy(moe.encode([f"{t}\t{x}" for t, x in zip(["text", "molecule"] * 3, TEXTS)], tower="text"))
    assert moe.tower("text").encoder.expert_layers == tuple(range(6))
    torch.testing.assert_close(ours, reference, rtol=0, atol=TOLERANCE)


def test_perturbing_one_expert_changes_only_the_examples_routed_to_it(tiny_bert_dir: str) -> None:
    moe, _ = _pair(tiny_bert_dir)
    tags = ["text", "molecule", "text", "other", "molecule"]
    items = [f"{t}\t{x}" for t, x in zip(tags, TEXTS, strict=True)]
    before = torch.from_numpy(moe.encode(items, tower="text"))
    encoder = moe.tower("text").encoder
    with torch.no_grad():
        weight = encoder.experts(0)[1]["intermediate"].dense.weight  # block 0, expert 'molecule'
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    after = torch.from_numpy(moe.encode(items, tower="text"))
    changed = [(a - b).abs().max().item() > 1e-4 for a, b in zip(after, before, strict=True)]
    assert changed == [t == "molecule" for t in tags]


def test_loss_equals_sentence_transformers_mnrl(tiny_bert_dir: str) -> None:
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking import (
        MultipleNegativesRankingLoss as STMNRL,
    )

    model = _model(
        f"""
model:
  towers:
    text:
      tokenizer: {{type: moe-embed.domain-tokenizer, model: '{tiny_bert_dir}', domains: [text, molecule]}}
      encoder:   {{type: moe-embed.moe-transformer, model: '{tiny_bert_dir}'}}
      poolers:   {{sentence: {{type: std.mean}}}}
    molecule: {{shared_with: text}}
  alignments:
    pairs: {{type: std.cosine, between: [text.sentence, molecule.sentence]}}
  losses:
    - {{type: std.mnrl, on: pairs, scale: 20.0}}
"""
    )
    texts = [f"text\t{x}" for x in ("the acid in water", "a small molecule", "one ring", "hello world")]
    molecules = [f"molecule\t{x}" for x in ("CC(=O)O", "C", "C1=CC=CC=C1", "O")]
    with torch.no_grad():
        ours = model({"text": texts, "molecule": molecules}).loss
        a = model.encode_batch("text", texts)["sentence"].hidden
        b = model.encode_batch("molecule", molecules)["sentence"].hidden
    reference = STMNRL(nn.Module(), scale=20.0).compute_loss_from_embeddings([a, b], labels=None)
    assert ours is not None
    torch.testing.assert_close(ours, reference, rtol=0, atol=TOLERANCE)


def test_feed_forward_flops_per_token_are_unchanged(tiny_bert_dir: str) -> None:
    """Count multiply-adds of every Linear called: equal for the MoE and the plain encoder."""
    moe, plain = _pair(tiny_bert_dir)

    def count(model, items):  # type: ignore[no-untyped-def]
        total = [0]

        def hook(module: nn.Linear, args: tuple, _out: torch.Tensor) -> None:  # type: ignore[type-arg]
            total[0] += args[0].shape[:-1].numel() * module.in_features * module.out_features

        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
        model.encode(items, tower="text", sort_by_length=False)
        for h in handles:
            h.remove()
        return total[0]

    tags = ["text", "molecule", "other", "text", "molecule"]
    assert count(moe, [f"{t}\t{x}" for t, x in zip(tags, TEXTS, strict=True)]) == count(plain, TEXTS)
