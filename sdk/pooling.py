"""Masked pooling over the sequence dimension: the one implementation every plugin uses.

Each function reads ``hidden`` [B, T, ...] and a mask [B, T] (True, or non-zero,
= a real position) and reduces dimension 1. Padded positions never contribute:
they are replaced with ``masked_fill`` rather than multiplied by the mask, so
even non-finite values there cannot leak in. The results equal
sentence-transformers' ``Pooling`` module for the same mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["first_real_token", "last_real_token", "masked_max", "masked_mean", "masked_sum"]


def _expand(mask: Tensor, hidden: Tensor) -> Tensor:
    """Bool mask [B, T] broadcastable against ``hidden`` [B, T, ...]."""
    mask = mask.bool()
    return mask.reshape(*mask.shape, *([1] * (hidden.dim() - mask.dim())))


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs (summing many halves loses precision), else the input dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def masked_sum(hidden: Tensor, mask: Tensor) -> Tensor:
    """Sum over real positions: [B, T, ...] -> [B, ...] (accumulated in float32 for half precision)."""
    m = _expand(mask, hidden)
    return hidden.masked_fill(~m, 0).sum(dim=1, dtype=_accumulation_dtype(hidden.dtype)).to(hidden.dtype)


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean over real positions: [B, T, ...] -> [B, ...]; the count is clamped at 1e-9 (an empty row gives 0).

    Accumulated in float32 for half-precision inputs, returned in ``hidden``'s dtype.
    """
    m = _expand(mask, hidden)
    acc = _accumulation_dtype(hidden.dtype)
    total = hidden.masked_fill(~m, 0).sum(dim=1, dtype=acc)
    count = m.sum(dim=1, dtype=acc).clamp(min=1e-9)
    return (total / count).to(hidden.dtype)


def masked_max(hidden: Tensor, mask: Tensor) -> Tensor:
    """Element-wise max over real positions: [B, T, ...] -> [B, ...]; an empty row gets the dtype's minimum."""
    m = _expand(mask, hidden)
    return hidden.masked_fill(~m, torch.finfo(hidden.dtype).min).max(dim=1).values


def first_real_token(hidden: Tensor, mask: Tensor) -> Tensor:
    """The first real position of every row: [B, T, ...] -> [B, ...] (``[CLS]`` for right-padded BERT input).

    Correct under left padding too; a row without real positions gets position 0.
    """
    first = mask.bool().to(torch.int32).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]


def last_real_token(hidden: Tensor, mask: Tensor) -> Tensor:
    """The last real position of every row: [B, T, ...] -> [B, ...], under left or right padding; zeros for an empty row."""
    any_real, from_end = mask.bool().flip(1).max(dim=1)
    out = hidden[torch.arange(hidden.shape[0], device=hidden.device), hidden.shape[1] - 1 - from_end]
    return out.masked_fill(~_expand(any_real, out), 0)
