"""PiToMe token merging (one merging step), batched with per-item lengths.

For one item with real tokens x_1..x_n (hidden states [n, D]), their sizes s
(how many original tokens each one stands for), a metric k [n, d] (the layer's
attention keys summed over heads) and a margin m (official ``pitome_text``):

1. Candidates: the real tokens, except the first one ([CLS]) when
   ``protect_first``. N = number of candidates, r = min(floor(N * ratio), N // 2).
2. Energy: with k̂ = k / ||k||, sim = k̂ k̂ᵀ and σ = 1 − m,
   E_i = mean_j exp(−½((1 − sim_ij)/σ)²) / (σ √(2π))  over the candidates j.
3. Sort candidates by energy, descending (stable: ties keep position order).
   The first 2r are mergeable, the rest are *protected*. Of the mergeable ones,
   A = the r with the highest energy, B = the next r.
4. Every a ∈ A goes to dst(a) = argmax_{b ∈ B} sim(a, b) (first b in energy
   order on ties) and is merged by a size-weighted average (``merge_wavg``):
   x_b ← (s_b x_b + Σ_{a→b} s_a x_a) / (s_b + Σ_{a→b} s_a),  s_b ← s_b + Σ_{a→b} s_a.
5. Output: the n − r tokens that are not in A, in their original order
   ([CLS] first), left-aligned and padded to the longest item of the batch.
   Tokens that received nothing (protected tokens, [CLS], B tokens without a
   match) are copied bit-exactly.

The mass Σ_i s_i x_i and the total size Σ_i s_i of every item are conserved.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["merge_count", "pitome_energy", "pitome_merge"]


def merge_count(num_candidates: Tensor, ratio: float) -> Tensor:
    """r per item: ``min(floor(N * ratio), N // 2)`` for N candidates (long tensor [B])."""
    n = num_candidates.to(torch.long)
    r = torch.floor(n.to(torch.float64) * ratio).to(torch.long)
    return torch.minimum(r, torch.div(n, 2, rounding_mode="floor"))


def pitome_energy(sim: Tensor, candidates: Tensor, margin: float) -> Tensor:
    """E_i [B, T]: mean over candidate j of the Gaussian kernel of (1 − sim_ij), scale σ = 1 − margin.

    ``sim`` [B, T, T] cosine similarities, ``candidates`` [B, T] bool; non-candidates get −inf.
    """
    sigma = 1.0 - margin
    kernel = torch.exp(-0.5 * ((1.0 - sim) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    kernel = kernel.masked_fill(~candidates.unsqueeze(1), 0.0)
    count = candidates.sum(dim=1, keepdim=True).clamp(min=1).to(sim.dtype)
    energy = kernel.sum(dim=-1) / count
    return energy.masked_fill(~candidates, float("-inf"))


def pitome_merge(
    x: Tensor,
    metric: Tensor,
    mask: Tensor,
    size: Tensor,
    *,
    ratio: float,
    margin: float,
    protect_first: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """One PiToMe merge: x [B, T, D], metric [B, T, d], mask [B, T] bool, size [B, T] -> (x', mask', size').

    Returns hidden states [B, T', D] (T' = the longest n_b − r_b), the new bool
    mask and the new sizes (0 at padding). Padded positions of the inputs never
    influence the result. ``ratio`` is the fraction of candidates removed
    (at most one half); ``margin`` sets σ = 1 − margin of the energy kernel.
    """
    b_size, t_size, d = x.shape
    mask = mask.bool()
    if ratio <= 0 or t_size < 2:
        return x, mask, size
    device = x.device
    candidates = mask.clone()
    if protect_first:
        first = mask.to(torch.int32).argmax(dim=1)
        candidates[torch.arange(b_size, device=device), first] = False
    r = merge_count(candidates.sum(dim=1), ratio)  # [B]
    if int(r.max()) == 0:
        return x, mask, size

    with torch.no_grad():  # the matching is discrete: no gradient flows through it (as the official code)
        work = torch.float32 if metric.dtype in (torch.float16, torch.bfloat16) else metric.dtype
        k = torch.nn.functional.normalize(metric.to(work), p=2, dim=-1)
        k = k.masked_fill(~mask.unsqueeze(-1), 0.0)
        sim = k @ k.transpose(-1, -2)  # [B, T, T]
        energy = pitome_energy(sim, candidates, margin)
        order = torch.sort(energy, dim=1, descending=True, stable=True).indices  # candidates first
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(t_size, device=device).expand(b_size, -1))
        rr = r.unsqueeze(1)
        is_a = candidates & (rank < rr)
        is_b = candidates & (rank >= rr) & (rank < 2 * rr)
        # dst(a) = argmax over B of sim(a, b); ties -> the b with the lowest rank (first in energy order)
        sim_ab = sim.masked_fill(~is_b.unsqueeze(1), float("-inf"))
        best = sim_ab.max(dim=-1, keepdim=True).values
        tie_rank = torch.where(sim_ab == best, rank.unsqueeze(1).expand(-1, t_size, -1), t_size)
        dst = torch.gather(order, 1, tie_rank.min(dim=-1).values.clamp(max=t_size - 1))  # [B, T] position
        target = torch.where(is_a, dst, torch.arange(t_size, device=device).expand(b_size, -1))
        keep = mask & ~is_a
        hits = torch.zeros_like(rank).scatter_add(1, dst.masked_fill(~is_a, 0), is_a.to(rank.dtype))
        received = (hits > 0) & ~is_a
        kept_count = keep.sum(dim=1)
        t_new = int(kept_count.max())
        # kept positions first, in their original order
        slots = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :t_new]
        new_mask = torch.arange(t_new, device=device).unsqueeze(0) < kept_count.unsqueeze(1)

    size = size.to(x.dtype).masked_fill(~mask, 0.0)
    weighted = (x * size.unsqueeze(-1)).masked_fill(~mask.unsqueeze(-1), 0.0)
    mass = torch.zeros_like(weighted).scatter_add(1, target.unsqueeze(-1).expand(-1, -1, d), weighted)
    total = torch.zeros_like(size).scatter_add(1, target, size)
    merged = mass / total.clamp(min=torch.finfo(x.dtype).tiny).unsqueeze(-1)
    out = torch.where(received.unsqueeze(-1), merged, x)  # untouched tokens are copied exactly
    new_size = torch.where(received, total, size)
    out = torch.gather(out, 1, slots.unsqueeze(-1).expand(-1, -1, d)).masked_fill(~new_mask.unsqueeze(-1), 0.0)
    new_size = torch.gather(new_size, 1, slots).masked_fill(~new_mask, 0.0)
    return out, new_mask, new_size
