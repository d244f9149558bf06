"""Sparsification helpers shared by the pooler, the aligner and the loss (official ``sparsify_utils``)."""

from __future__ import annotations

import torch
from torch import Tensor


def elu1p(x: Tensor) -> Tensor:
    """``ELU(x) + 1``: strictly positive, the official ``elu1p``."""
    return torch.nn.functional.elu(x) + 1.0


def topk_mask(v: Tensor, k: int) -> Tensor:
    """Bool mask with exactly ``min(k, V)`` True entries per row, at the row's largest values."""
    k = min(int(k), v.shape[-1])
    idx = v.topk(k, dim=-1).indices
    return torch.zeros_like(v, dtype=torch.bool).scatter(-1, idx, True)


def topk_sparsify(v: Tensor, k: int) -> Tensor:
    """Keep each row's top ``k`` entries, zero the rest (gradients flow to the kept entries)."""
    return v.masked_fill(~topk_mask(v, k), 0.0)


def bow_vector(input_ids: Tensor, mask: Tensor, vocab_rows: int, shift: int) -> Tensor:
    """Binary bag of words [B, V']: 1 exactly at ``id - shift`` of every real token with ``id >= shift``."""
    keep = mask.bool() & (input_ids >= shift) & (input_ids < shift + vocab_rows)
    cols = (input_ids - shift).clamp(min=0, max=vocab_rows - 1)
    out = torch.zeros(input_ids.shape[0], vocab_rows, dtype=torch.float32, device=input_ids.device)
    return out.scatter_add_(1, cols, keep.float()).clamp_(max=1.0)
