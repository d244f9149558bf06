"""Landmark attention's grouped softmax, and rotary position embeddings.

The grouped softmax (``landmark_grouped_softmax`` in ``lm_benchmark/models/landmark.py`` of
``epfml/landmark-attention``), for one query in block ``b``:

* the visible tokens of block ``b`` and the landmarks of the *other* visible blocks share one softmax
  (the landmark of block ``b`` itself is masked, even when the query is that landmark);
* a token of another block ``j`` gets ``softmax over block j's visible tokens`` × ``P(landmark_j)``
  (the landmark's probability in the shared softmax);
* a landmark's own value gets no weight: its probability only gates its block.

So the weights of a query sum to 1, the tokens of block ``j`` together weigh exactly ``P(landmark_j)``,
and without landmarks (one block) it is the ordinary softmax. Here it is written for scores
``[..., Q, K]`` whose keys carry a block id and a landmark flag that may differ per query (after
top-k retrieval each query sees other blocks); the official function assumes keys shared by all
queries, and ``tests/test_attention.py`` compares the two where both apply.
"""

from __future__ import annotations

import torch
from torch import Tensor


def landmark_grouped_softmax(
    scores: Tensor,
    key_block: Tensor,
    key_is_landmark: Tensor,
    query_block: Tensor,
    visible: Tensor,
) -> Tensor:
    """Attention weights ``[..., Q, K]`` of the grouped softmax (see the module docs).

    ``scores`` ``[..., Q, K]``; ``key_block`` (long, ≥ 0) and ``key_is_landmark`` (bool) broadcast to
    ``scores`` (``[..., 1, K]`` for keys shared by all queries); ``query_block`` broadcasts to
    ``[..., Q, 1]``; ``visible`` (bool) broadcasts to ``scores`` (causal and padding mask). Rows
    without any visible key get zero weights.
    """
    shape = scores.shape
    key_block = key_block.expand(shape)
    is_lm = key_is_landmark.expand(shape)
    visible = visible.expand(shape)
    own = key_block == query_block.expand(shape[:-1] + (1,))
    local = visible & (own != is_lm)  # own-block tokens, or other blocks' landmarks
    other = visible & ~own & ~is_lm  # tokens of other blocks
    neg = torch.finfo(scores.dtype).min

    # the shared softmax over the query's block and the other blocks' landmarks
    x0 = scores.masked_fill(~local, float("-inf"))
    with torch.no_grad():
        m0 = x0.amax(-1, keepdim=True)
        m0 = torch.where(torch.isfinite(m0), m0, torch.zeros_like(m0))
    e0 = torch.exp(x0 - m0)
    p0 = e0 / e0.sum(-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)

    # one softmax per other block, over its tokens
    groups = int(key_block.max()) + 1 if key_block.numel() else 1
    xw = scores.masked_fill(~other, float("-inf"))
    with torch.no_grad():
        gmax = torch.full(shape[:-1] + (groups,), neg, dtype=scores.dtype, device=scores.device)
        gmax = gmax.scatter_reduce(-1, key_block, xw.clamp_min(neg), reduce="amax", include_self=True)
    ew = torch.exp(xw - gmax.gather(-1, key_block))
    den = torch.zeros(shape[:-1] + (groups,), dtype=scores.dtype, device=scores.device).scatter_add(-1, key_block, ew)
    pw = ew / den.gather(-1, key_block).clamp_min(torch.finfo(scores.dtype).tiny)

    # P(landmark_j) per block j, read back at block j's tokens
    mass = torch.zeros(shape[:-1] + (groups,), dtype=scores.dtype, device=scores.device)
    mass = mass.scatter_add(-1, key_block, p0 * (is_lm & local))
    gate = mass.gather(-1, key_block)
    return torch.where(local & ~is_lm, p0, torch.zeros_like(p0)) + torch.where(other, pw * gate, torch.zeros_like(pw))


def _safe_softmax(x: Tensor, keep: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Softmax of ``x`` over ``dims`` restricted to ``keep``; all-masked rows give zeros (and no NaN gradients)."""
    x = x.masked_fill(~keep, float("-inf"))
    with torch.no_grad():
        m = x.amax(dim=dims, keepdim=True)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    return e / e.sum(dim=dims, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def landmark_attention_blocks(scores: Tensor, q_pos: Tensor, key_mask: Tensor, block_size: int) -> Tensor:
    """The grouped softmax for keys that are the stream itself (positions 0..K-1), without scatters.

    ``scores`` ``[B, H, Q, K]`` of queries at stream positions ``q_pos`` ``[Q]``; ``key_mask`` ``[B, K]``
    (True = real). The keys are viewed as ``[n_blocks, block_size + 1]`` (the last of each block is its
    landmark), so each block's softmax is a softmax over the last axis. Equals
    :func:`landmark_grouped_softmax` with causal visibility (tested); used for training and full attention.
    """
    b, h, nq, k = scores.shape
    width = block_size + 1
    nb = -(-k // width)
    pad = nb * width - k
    x = torch.nn.functional.pad(scores, (0, pad)).view(b, h, nq, nb, width)
    kpos = torch.arange(nb * width, device=scores.device).view(nb, width)
    valid = torch.nn.functional.pad(key_mask, (0, pad)).view(b, 1, 1, nb, width)
    causal = (kpos[None] <= q_pos.view(-1, 1, 1)).unsqueeze(0).unsqueeze(0)  # [1, 1, Q, NB, W]
    own = (torch.arange(nb, device=scores.device)[None, :] == (q_pos // width)[:, None]).view(1, 1, nq, nb, 1)
    is_lm = (torch.arange(width, device=scores.device) == block_size).view(1, 1, 1, 1, width)
    seen = causal & valid
    local = seen & (own != is_lm)
    other = seen & ~own & ~is_lm
    p0 = _safe_softmax(x, local, (-2, -1))
    pw = _safe_softmax(x, other, (-1,))
    gate = p0[..., block_size : block_size + 1]  # P(landmark) of each block, [B, H, Q, NB, 1]
    w = p0 * (local & ~is_lm) + pw * gate
    return w.view(b, h, nq, nb * width)[..., :k]


class Rotary(torch.nn.Module):
    """Rotary position embeddings (RoFormer; the ``rotary`` encoder of the official code) at arbitrary positions."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotate ``x`` ``[..., T, hd]`` by ``positions`` (broadcastable to ``[..., T]``)."""
        angles = positions.to(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq  # [..., T, hd/2]
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(x.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(x.dtype)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin
