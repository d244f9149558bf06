"""Unit tests of the masked poolers: padding invariance and the position each one reads."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import (
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    PipelineError,
    Runtime,
)
from repmix_std.poolers import ClsPooler, LastTokenPooler, MaxPooler, MeanPooler

POOLERS = [ClsPooler, MeanPooler, MaxPooler, LastTokenPooler]


def make(cls, **config: object):  # type: ignore[no-untyped-def]
    return cls(cls.Config(**config), Runtime(input=GranularitySpec("sequence", 8)))


def pool(pooler, hidden: torch.Tensor, mask: torch.Tensor, source: str = "token") -> torch.Tensor:  # type: ignore[no-untyped-def]
    return pooler(Encoded({source: Granularity(hidden, mask)})).hidden


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = [4, 1, 3]
    hidden = torch.randn(3, 4, 8, generator=g)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return hidden, mask


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("cls", POOLERS, ids=lambda c: c.__name__)
def test_padding_never_changes_the_pooled_vector(cls, side: str, normalize: bool) -> None:  # type: ignore[no-untyped-def]
    pooler = make(cls, normalize=normalize)
    hidden, mask = batch()
    if side == "left":
        hidden, mask = hidden.flip(1), mask.flip(1)
        # Keep each sequence in reading order after flipping the padding to the left.
        for i in range(hidden.shape[0]):
            n = int(mask[i].sum())
            hidden[i, -n:] = hidden[i, -n:].flip(0)
    expected = pool(pooler, hidden, mask)
    g = torch.Generator().manual_seed(7)
    extra = 5
    garbage = torch.randn(hidden.shape[0], extra, hidden.shape[2], generator=g) * 1e6
    no = torch.zeros(hidden.shape[0], extra, dtype=torch.bool)
    if side == "right":
        padded, padded_mask = torch.cat([hidden, garbage], 1), torch.cat([mask, no], 1)
    else:
        padded, padded_mask = torch.cat([garbage, hidden], 1), torch.cat([no, mask], 1)
    # Garbage also inside the existing padded positions.
    padded = torch.where(padded_mask.unsqueeze(-1), padded, torch.full_like(padded, -3e7))
    torch.testing.assert_close(pool(pooler, padded, padded_mask), expected, rtol=1e-6, atol=1e-6)
    # Non-finite values at padded positions must not leak in either.
    nasty = torch.where(padded_mask.unsqueeze(-1), padded, torch.full_like(padded, float("nan")))
    torch.testing.assert_close(pool(pooler, nasty, padded_mask), expected, rtol=1e-6, atol=1e-6)


def test_mean_pooler_values() -> None:
    hidden, mask = batch()
    out = pool(make(MeanPooler), hidden, mask)
    for i in range(3):
        n = int(mask[i].sum())
        torch.testing.assert_close(out[i], hidden[i, :n].mean(0))


def test_mean_of_an_item_without_tokens_is_zero() -> None:
    hidden = torch.randn(1, 3, 8)
    out = pool(make(MeanPooler), hidden, torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 8))


def test_max_pooler_values() -> None:
    hidden, mask = batch()
    hidden = hidden - 10  # all negative: padded zeros would win a max taken without masking
    out = pool(make(MaxPooler), hidden, mask)
    for i in range(3):
        n = int(mask[i].sum())
        torch.testing.assert_close(out[i], hidden[i, :n].max(0).values)


@pytest.mark.parametrize("side", ["right", "left"])
def test_cls_reads_the_first_real_token(side: str) -> None:
    hidden = torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2)
    if side == "right":
        mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
        first = [0, 0]
    else:
        mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
        first = [1, 2]
    out = pool(make(ClsPooler), hidden, mask)
    torch.testing.assert_close(out, torch.stack([hidden[0, first[0]], hidden[1, first[1]]]))


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_reads_the_last_real_token(side: str) -> None:
    hidden = torch.arange(3 * 5 * 2, dtype=torch.float32).view(3, 5, 2)
    if side == "right":
        mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
        last = [2, 4, 0]
    else:
        mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
        last = [4, 4, 4]
    out = pool(make(LastTokenPooler), hidden, mask)
    torch.testing.assert_close(out, torch.stack([hidden[i, j] for i, j in enumerate(last)]))


def test_last_token_of_an_item_without_tokens_is_zero() -> None:
    out = pool(make(LastTokenPooler), torch.randn(1, 3, 2), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 2))


@pytest.mark.parametrize("cls", POOLERS, ids=lambda c: c.__name__)
def test_normalize_gives_unit_vectors_and_source_is_respected(cls) -> None:  # type: ignore[no-untyped-def]
    hidden, mask = batch()
    out = pool(make(cls, normalize=True, source="words"), hidden * 5, mask, source="words")
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    assert out.shape == (3, 8)


@pytest.mark.parametrize("cls", POOLERS, ids=lambda c: c.__name__)
def test_signature_needs_a_sequence_source(cls) -> None:  # type: ignore[no-untyped-def]
    enc = EncoderSignature({"token": GranularitySpec("sequence", 8), "sentence": GranularitySpec("pooled", 8)})
    assert cls.signature(cls.Config(), enc) == GranularitySpec("pooled", 8)
    with pytest.raises(PipelineError):
        cls.signature(cls.Config(source="sentence"), enc)
    with pytest.raises(PipelineError):
        cls.signature(cls.Config(source="atoms"), enc)


def test_gradients_reach_only_real_positions() -> None:
    hidden, mask = batch()
    hidden.requires_grad_(True)
    pool(make(MeanPooler, normalize=True), hidden, mask).sum().backward()
    assert hidden.grad is not None
    assert torch.all(hidden.grad[~mask] == 0)
