"""Faithfulness of the mltp poolers.

1. ``mltp.token-mean`` and ``mltp.eos`` equal sentence-transformers 6.2 ``Pooling(pooling_mode="mean" |
   "lasttoken")`` on the same token embeddings, right- and left-padded (atol 1e-6).
2. The invariances the paper's design implies for Multi-Layers Trainable Pooling:
   - the output has unit norm (L2 at the end);
   - permuting the r latents (rows of X0) leaves it unchanged (the latents are a set: each one
     attends independently and they are averaged);
   - with the layer-position embedding P zeroed, permuting the layer order leaves it unchanged
     (attention over the N layer states is a set operation); with P as trained/initialised,
     permuting the layers changes it (P is what tells the layers apart);
   - the last *real* token is pooled: left or right padding give the same output.
3. The parameter count equals the resampler formula, and the design runs on a real encoder's
   per-layer states (a tiny BERT from YAML).
"""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import (
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    LocatedConfig,
    Runtime,
    build_model,
    parse_yaml,
    plan_model,
)
from repmix_mltp.poolers import EosPooler, MeanPooler, MultiLayerTrainablePooler


def padded(left: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 1, 3, 5, 2]
    t = max(lengths) + 2
    hidden = torch.randn(len(lengths), t, 16, generator=g) * 3
    mask = torch.zeros(len(lengths), t, dtype=torch.long)
    for i, n in enumerate(lengths):
        if left:
            mask[i, t - n :] = 1
        else:
            mask[i, :n] = 1
    return hidden, mask


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize(("cls", "mode"), [(MeanPooler, "mean"), (EosPooler, "lasttoken")])
def test_baselines_match_sentence_transformers_pooling(cls, mode: str, left: bool) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    hidden, mask = padded(left)
    reference = Pooling(16, pooling_mode=mode)({"token_embeddings": hidden.clone(), "attention_mask": mask.clone()})
    ours = cls(cls.Config(), Runtime()).eval()(Encoded({"token": Granularity(hidden, mask.bool())})).hidden
    torch.testing.assert_close(ours, reference["sentence_embedding"], rtol=0, atol=1e-6)


def multi_layer(num_states: int = 5, dim: int = 16, **options: object) -> MultiLayerTrainablePooler:
    config = MultiLayerTrainablePooler.Config(latents=6, heads=2, dim_head=8, **options)  # type: ignore[arg-type]
    spec = GranularitySpec("sequence", dim)
    torch.manual_seed(0)
    return MultiLayerTrainablePooler(config, Runtime(input=spec, encoder=EncoderSignature({"token": spec}, num_states))).eval()


def layered(num_states: int = 5, left: bool = False) -> Encoded:
    hidden, mask = padded(left, seed=1)
    g = torch.Generator().manual_seed(2)
    layers = tuple(torch.randn(hidden.shape, generator=g) for _ in range(num_states))
    return Encoded({"token": Granularity(layers[-1], mask.bool())}, layers=layers)


def test_multi_layer_output_has_unit_norm() -> None:
    out = multi_layer()(layered()).hidden
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(out.shape[0]), atol=1e-6, rtol=0)


def test_invariant_to_permuting_latents() -> None:
    pooler = multi_layer()
    encoded = layered()
    with torch.no_grad():
        before = pooler(encoded).hidden
        pooler.resampler.latents.copy_(pooler.resampler.latents[torch.tensor([3, 0, 5, 1, 4, 2])])
        after = pooler(encoded).hidden
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_layer_order_matters_only_through_the_position_embedding() -> None:
    pooler = multi_layer()
    encoded = layered()
    assert encoded.layers is not None
    permuted = Encoded(
        encoded.granularities, layers=(encoded.layers[0], encoded.layers[3], encoded.layers[1], encoded.layers[4], encoded.layers[2])
    )
    with torch.no_grad():
        moved = (pooler(encoded).hidden - pooler(permuted).hidden).abs().max()
        assert moved > 1e-2  # P distinguishes the layers
        assert pooler.resampler.positions is not None
        pooler.resampler.positions.weight.zero_()
        torch.testing.assert_close(pooler(permuted).hidden, pooler(encoded).hidden, atol=1e-6, rtol=0)


def test_last_real_token_is_pooled_under_either_padding() -> None:
    pooler = multi_layer()
    right, left = layered(left=False), layered(left=True)
    # move each row's real tokens to the other side: same content, other padding
    assert right.layers is not None
    mask_r = right["token"].full_mask()
    mask_l = left["token"].full_mask()
    layers_l = []
    for layer in right.layers:
        out = torch.zeros_like(layer)
        for i in range(layer.shape[0]):
            out[i, mask_l[i]] = layer[i, mask_r[i]]
        layers_l.append(out)
    left = Encoded({"token": Granularity(layers_l[-1], mask_l)}, layers=tuple(layers_l))
    with torch.no_grad():
        torch.testing.assert_close(pooler(left).hidden, pooler(right).hidden, atol=1e-6, rtol=0)


def test_parameter_count_matches_the_formula() -> None:
    pooler = multi_layer(num_states=7, dim=384)
    n = sum(p.numel() for p in pooler.parameters())
    assert n == pooler.expected_parameters()
    # the layer-position embedding has one row per pooled layer (1..6 of MiniLM)
    assert pooler.resampler.positions is not None and pooler.resampler.positions.num_embeddings == 6


def test_runs_on_a_real_encoders_layers(tiny_bert_dir: str) -> None:
    text = f"""
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {tiny_bert_dir}, max_length: 64}}
      encoder:   {{type: hf-transformer, model: {tiny_bert_dir}}}
      poolers:   {{sentence: {{type: mltp.multi-layer, latents: 4}}, eos: {{type: mltp.eos}}}}
"""
    data, lines = parse_yaml(text, "m.yaml")
    model = build_model(plan_model(LocatedConfig(data, lines, "m.yaml"))).eval()
    items = ["a man is riding a horse", "hello", "the red car"]
    with torch.no_grad():
        encoded = model.encode_batch("text", items)
    assert encoded.layers is not None and len(encoded.layers) == 4  # the pooler asked the tower for them
    assert encoded["sentence"].hidden.shape == (3, 32)
    # the EOS of a BERT input is [SEP]: the last real token of the last layer
    mask = encoded["token"].full_mask()
    last = torch.stack([encoded["token"].hidden[i, int(mask[i].sum()) - 1] for i in range(3)])
    torch.testing.assert_close(encoded["eos"].hidden, last)


def test_a_network_cut_short_pools_the_layers_it_has() -> None:
    """Re-pooled at a shallower layer (2D Matryoshka), only the layers below the cut are attended to."""
    pooler = multi_layer(num_states=5)
    encoded = layered(num_states=5)
    assert encoded.layers is not None
    with torch.no_grad():
        cut = Encoded({"token": Granularity(encoded.layers[2], encoded["token"].mask)}, layers=encoded.layers[:3])
        states = pooler.layer_states(cut)
        mask = encoded["token"].full_mask()
        expected = torch.stack([encoded.layers[i][torch.arange(5), mask.sum(1) - 1] for i in (1, 2)], dim=1)
        torch.testing.assert_close(states, expected)
        only_embeddings = Encoded({"token": Granularity(encoded.layers[0], mask)}, layers=encoded.layers[:1])
        assert pooler.layer_states(only_embeddings).shape == (5, 1, 16)
        assert torch.isfinite(pooler(only_embeddings).hidden).all()
