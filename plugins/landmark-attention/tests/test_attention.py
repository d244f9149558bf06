"""Faithfulness of the grouped softmax: the official implementation, and the paper's invariants (tolerance 1e-6)."""

from __future__ import annotations

import pytest
import torch
from official_landmark import official_weights
from repmix_landmark_attention import landmark_grouped_softmax, stream_layout


def layout(t: int, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stream positions, block ids and landmark flags of a stream of length t with a landmark after every block."""
    pos = torch.arange(t)
    return pos, pos // (block + 1), pos % (block + 1) == block


def mine(scores: torch.Tensor, block: int) -> torch.Tensor:
    t = scores.shape[-1]
    pos, blk, lm = layout(t, block)
    visible = (pos[None, :] <= pos[:, None]).view(1, 1, t, t)
    return landmark_grouped_softmax(scores, blk.view(1, 1, 1, t), lm.view(1, 1, 1, t), blk.view(1, 1, t, 1), visible)


@pytest.mark.parametrize("t, block", [(23, 4), (17, 3), (10, 16), (30, 1)])
def test_equals_the_official_grouped_softmax(t: int, block: int) -> None:
    torch.manual_seed(t)
    scores = torch.randn(2, 3, t, t) * 3
    _, _, lm = layout(t, block)
    ref = official_weights(scores.clone(), lm.expand(2, t))
    assert torch.allclose(mine(scores, block), ref, atol=1e-6)


def test_weights_sum_to_one_and_block_mass_is_the_landmark_probability() -> None:
    torch.manual_seed(0)
    t, block = 27, 4
    scores = torch.randn(1, 2, t, t)
    w = mine(scores, block)
    pos, blk, lm = layout(t, block)
    assert torch.allclose(w.sum(-1), torch.ones(1, 2, t), atol=1e-6)
    assert (w[..., lm] == 0).all()  # a landmark's value never mixes in
    for q in range(t):
        own = blk[q]
        shared = ((blk == own) & ~lm | (blk != own) & lm) & (pos <= q)  # the shared softmax of query q
        p = torch.softmax(scores[0, :, q].masked_fill(~shared, float("-inf")), -1)
        for j in range(int(own)):
            in_j = (blk == j) & ~lm
            landmark_j = int(torch.nonzero((blk == j) & lm)[0])
            assert torch.allclose(w[0, :, q, in_j].sum(-1), p[:, landmark_j], atol=1e-6)


def test_without_landmarks_it_is_the_causal_softmax() -> None:
    torch.manual_seed(1)
    t = 12
    scores = torch.randn(2, 2, t, t)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    ref = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
    zeros = torch.zeros(1, 1, 1, t, dtype=torch.long)
    got = landmark_grouped_softmax(scores, zeros, zeros.bool(), torch.zeros(1, 1, t, 1, dtype=torch.long),
                                   causal.view(1, 1, t, t))
    assert torch.allclose(got, ref, atol=1e-6)


def test_gradients_match_the_official_function() -> None:
    torch.manual_seed(2)
    t, block = 14, 3
    scores = torch.randn(1, 2, t, t, requires_grad=True)
    proj = torch.randn(1, 2, t, t)
    (mine(scores, block) * proj).sum().backward()
    g_mine = scores.grad.clone()
    scores.grad = None
    _, _, lm = layout(t, block)
    (official_weights(scores, lm.expand(1, t)) * proj).sum().backward()  # autograd through the same ops
    assert torch.allclose(g_mine, scores.grad, atol=1e-5)


def test_stream_layout_inserts_a_landmark_after_every_block() -> None:
    offsets, flags = stream_layout(0, 9, 4)
    assert offsets.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 10] and torch.nonzero(flags).squeeze(-1).tolist() == [4, 9]
    offsets, flags = stream_layout(3, 2, 4)  # continuing after 3 tokens: the 4th completes a block
    assert offsets.tolist() == [0, 2] and flags.tolist() == [False, True, False]
    offsets, flags = stream_layout(0, 5, None)
    assert offsets.tolist() == [0, 1, 2, 3, 4] and not flags.any()
