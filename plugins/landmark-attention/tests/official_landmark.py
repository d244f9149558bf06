"""The official grouped softmax, ported verbatim for reference (tests only).

From ``lm_benchmark/models/landmark.py`` of https://github.com/epfml/landmark-attention
(Copyright 2023 Amirkeivan Mohtashami, Martin Jaggi; Apache License 2.0): the autograd function's
forward, ``landmark_grouped_softmax`` and the mask preparation of ``CausalSelfAttention.forward``
(without the cache prefix and group dropout).
"""

from __future__ import annotations

import torch


def _grouped_softmax_forward(x, dim, mem_cnt, resp_mem_idx):  # LandmarkGroupedSoftmaxFunction.forward
    new_shape = list(x.shape)
    new_shape[dim] = mem_cnt
    max_by_group = x.new_zeros((*new_shape,))
    max_by_group.scatter_reduce_(src=x, index=resp_mem_idx, dim=dim, reduce="amax", include_self=False)
    maxes = torch.gather(max_by_group, dim, resp_mem_idx)
    x_exp = torch.exp(x - torch.where(torch.isinf(maxes), 0, maxes))
    cumsum_by_group = torch.zeros_like(max_by_group, dtype=x_exp.dtype)
    cumsum_by_group.scatter_add_(dim, resp_mem_idx, x_exp)
    denom = torch.gather(cumsum_by_group, dim, resp_mem_idx)
    return torch.where(denom < 0.5, 0, x_exp / denom)


def landmark_grouped_softmax(x, dim, is_mem, attn_mask, last_section_mask, max_mem_cnt):
    mask = attn_mask
    last_and_rest_mask = last_section_mask | mask
    full_access_mask = is_mem | last_and_rest_mask
    mem_group_idx = torch.cumsum(is_mem, dim=dim)
    mem_bucket_id = max_mem_cnt - 1
    resp_mem_idx = torch.where(last_and_rest_mask, max_mem_cnt - 1, torch.where(is_mem, mem_bucket_id, mem_group_idx))
    probs = _grouped_softmax_forward(x, dim, max_mem_cnt, resp_mem_idx)
    new_shape = list(x.shape)
    new_shape[dim] = max_mem_cnt
    group_prob = probs.new_zeros((*new_shape,))
    group_prob.scatter_(dim, torch.where(is_mem, mem_group_idx - 1, max_mem_cnt - 1), probs)
    group_prob.select(dim, max_mem_cnt - 1).copy_((probs * last_section_mask).sum(dim=dim))
    probs = probs.mul(torch.where(full_access_mask, last_section_mask, torch.gather(group_prob, dim, resp_mem_idx)))
    return probs


def official_weights(att: torch.Tensor, is_mem_tokens: torch.Tensor, max_groups: int = 64) -> torch.Tensor:
    """Attention weights of CausalSelfAttention.forward for scores ``att`` [B, H, T, T] and landmark flags [B, T]."""
    _, h, t, _ = att.shape
    bias = torch.tril(torch.ones(t, t)).view(1, 1, t, t)
    att = att.masked_fill(bias == 0, float("-inf"))
    attn_mask = bias == 0
    is_mem = is_mem_tokens.unsqueeze(1).unsqueeze(2).repeat((1, h, 1, 1))
    dim = -1
    with torch.no_grad():
        mem_ids = torch.where(attn_mask, 0.0, torch.cumsum(is_mem, dim) - is_mem.int())
        last_section_mask = torch.amax(mem_ids, dim, keepdim=True) == mem_ids
        mask = attn_mask.logical_or(is_mem & last_section_mask)
        last_section_mask.logical_and_(~mask)
        is_mem = is_mem.logical_and(~mask)
    att = att.masked_fill_(mask, float("-inf"))
    return landmark_grouped_softmax(att, dim, is_mem, mask, last_section_mask, max_groups)
