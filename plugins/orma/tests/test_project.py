"""``orma.project``: ORMA's per-level projections, for sequences and pooled vectors."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import (
    ConfigError,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    PipelineError,
    Runtime,
)
from repmix_orma.project import ProjectPooler
from torch import nn

SIG = EncoderSignature(
    {"token": GranularitySpec("sequence", 10), "sentence": GranularitySpec("pooled", 10)}, num_layers=None
)


def build(source: str = "token", **options: object) -> ProjectPooler:
    config = ProjectPooler.Config(source=source, **options)
    torch.manual_seed(0)
    return ProjectPooler(config, Runtime(input=SIG.granularities[source], encoder=SIG)).eval()


def encoded() -> Encoded:
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    return Encoded(
        {"token": Granularity(torch.randn(2, 5, 10, generator=gen), mask), "sentence": Granularity(torch.randn(2, 10, generator=gen))}
    )


def test_signature_keeps_the_source_shape() -> None:
    assert ProjectPooler.signature(ProjectPooler.Config(source="token", dim=7), SIG) == GranularitySpec("sequence", 7)
    assert ProjectPooler.signature(ProjectPooler.Config(source="sentence"), SIG) == GranularitySpec("pooled", 10)
    with pytest.raises(PipelineError, match="does not provide"):
        ProjectPooler.signature(ProjectPooler.Config(source="atom"), SIG)


def test_sequence_projection_keeps_the_mask_and_zeroes_padding() -> None:
    pooler = build("token", dim=6)
    e = encoded()
    out = pooler(e)
    assert out.hidden.shape == (2, 5, 6) and torch.equal(out.mask, e["token"].mask)
    torch.testing.assert_close(out.hidden[out.mask], pooler.linear(e["token"].hidden[e["token"].mask]))
    assert torch.all(out.hidden[~out.mask] == 0)
    # garbage at padded positions, or more padding, changes nothing at the real positions
    noisy = e["token"].hidden.clone()
    noisy[~e["token"].mask] = 1e4
    longer = torch.cat([noisy, torch.full((2, 3, 10), -1e4)], dim=1)
    mask = torch.cat([e["token"].mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    again = pooler(Encoded({"token": Granularity(longer, mask)}))
    torch.testing.assert_close(again.hidden[:, :5], out.hidden)
    assert torch.all(again.hidden[:, 5:] == 0)


def test_pooled_projection_with_layer_norm_as_orma_sentence() -> None:
    pooler = build("sentence", dim=8, layer_norm=True)
    e = encoded()
    out = pooler(e)
    assert out.mask is None and out.hidden.shape == (2, 8)
    expected = nn.functional.layer_norm(pooler.linear(e["sentence"].hidden), (8,), pooler.norm.weight, pooler.norm.bias)
    torch.testing.assert_close(out.hidden, expected)


def test_default_width_bias_and_normalize() -> None:
    pooler = build("sentence", bias=False, normalize=True)
    assert pooler.linear.weight.shape == (10, 10) and pooler.linear.bias is None
    out = pooler(encoded())
    torch.testing.assert_close(out.hidden.norm(dim=-1), torch.ones(2))


def test_needs_the_input_width() -> None:
    with pytest.raises(ConfigError, match="width"):
        ProjectPooler(ProjectPooler.Config(source="token"), Runtime())
