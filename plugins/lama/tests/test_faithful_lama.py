"""Faithfulness of ``lama`` to the paper's equations and stated properties (no pip reference exists).

Reference: the equations of Mehta et al. (arXiv:1912.00835), written out below with explicit
loops over items, heads and tokens (an independent re-derivation, not the module's code path);
tolerance 1e-6. Properties the paper states, checked exactly:
- each head's attention weights sum to 1 over the unmasked tokens and are 0 on padding;
- padding (right or left, with garbage in it) does not change the output;
- the output is invariant to permuting the (h_t, mask_t) pairs (attention pooling is a set operation);
- the parameter count is 2dm + d.
"""

from __future__ import annotations

import math

import pytest
import torch
from repmix.sdk import Encoded, EncoderSignature, Granularity, GranularitySpec, Runtime
from repmix_lama.pooler import LamaPooler, parameter_count


def make(dim: int = 8, heads: int = 3, **options: object) -> LamaPooler:
    spec = GranularitySpec("sequence", dim)
    torch.manual_seed(0)
    config = LamaPooler.Config(heads=heads, **options)  # type: ignore[arg-type]
    return LamaPooler(config, Runtime(input=spec, encoder=EncoderSignature({"token": spec}))).eval()


def batch(dim: int = 8, lengths: tuple[int, ...] = (5, 2, 4, 1), seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths) + 2
    hidden = torch.randn(len(lengths), t, dim, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    hidden[~mask] = 1e4  # garbage in the padding
    return hidden, mask


def test_matches_the_equations_written_out() -> None:
    pooler = make()
    hidden, mask = batch()
    with torch.no_grad():
        ours = pooler(Encoded({"token": Granularity(hidden, mask)})).hidden
    p, q, c = pooler.p.detach(), pooler.q.detach(), pooler.context.detach()
    d, m = p.shape
    expected = torch.zeros(hidden.shape[0], m * d)
    for b in range(hidden.shape[0]):
        tokens = [hidden[b, t] for t in range(hidden.shape[1]) if mask[b, t]]
        for i in range(m):
            pc = sum(float(p[k, i]) * float(c[k]) for k in range(d))
            f = [math.tanh(pc * sum(float(q[k, i]) * float(h[k]) for k in range(d))) for h in tokens]
            z = sum(math.exp(x) for x in f)
            row = sum((math.exp(x) / z) * h for x, h in zip(f, tokens))
            expected[b, i * d : (i + 1) * d] = row
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


def test_each_head_sums_to_one_over_real_tokens_and_ignores_padding() -> None:
    pooler = make(heads=4)
    hidden, mask = batch()
    with torch.no_grad():
        weights = pooler.attention(hidden.masked_fill(~mask.unsqueeze(-1), 0), mask)
    assert weights.shape == (4, 4, hidden.shape[1])
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(4, 4), atol=1e-6, rtol=0)
    assert float(weights.masked_select(~mask.unsqueeze(1).expand_as(weights)).abs().max()) == 0.0
    assert bool((weights.masked_select(mask.unsqueeze(1).expand_as(weights)) > 0).all())


@pytest.mark.parametrize("output", ["concat", "mean"])
def test_padding_does_not_change_the_output(output: str) -> None:
    pooler = make(output=output)
    hidden, mask = batch()
    lengths = mask.sum(dim=1)
    with torch.no_grad():
        alone = [pooler(Encoded({"token": Granularity(hidden[i : i + 1, : int(n)], None)})).hidden for i, n in enumerate(lengths)]
        right = pooler(Encoded({"token": Granularity(hidden, mask)})).hidden
        left_hidden = torch.stack([torch.roll(hidden[i], shifts=hidden.shape[1] - int(n), dims=0) for i, n in enumerate(lengths)])
        left_mask = torch.stack([torch.roll(mask[i], shifts=mask.shape[1] - int(n), dims=0) for i, n in enumerate(lengths)])
        left = pooler(Encoded({"token": Granularity(left_hidden, left_mask)})).hidden
    torch.testing.assert_close(right, torch.cat(alone), atol=1e-6, rtol=0)
    torch.testing.assert_close(left, right, atol=1e-6, rtol=0)


def test_invariant_to_permuting_token_mask_pairs() -> None:
    pooler = make()
    hidden, mask = batch()
    perm = torch.randperm(hidden.shape[1], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = pooler(Encoded({"token": Granularity(hidden, mask)})).hidden
        b = pooler(Encoded({"token": Granularity(hidden[:, perm], mask[:, perm])})).hidden
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("dim", "heads"), [(8, 3), (384, 4), (768, 12)])
def test_parameter_count_is_2dm_plus_d(dim: int, heads: int) -> None:
    pooler = make(dim=dim, heads=heads)
    assert sum(p.numel() for p in pooler.parameters()) == parameter_count(dim, heads) == 2 * dim * heads + dim


def test_output_width_is_declared() -> None:
    spec = GranularitySpec("sequence", 384)
    sig = EncoderSignature({"token": spec})
    assert LamaPooler.signature(LamaPooler.Config(heads=4), sig).dim == 1536
    assert LamaPooler.signature(LamaPooler.Config(heads=4, output="mean"), sig).dim == 384
