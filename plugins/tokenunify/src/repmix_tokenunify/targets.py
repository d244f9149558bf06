"""TokenUnify's target construction and mixture schedule, as plain functions over token ids.

The three sub-objectives of TokenUnify (Chen et al., ICCV 2025), for a row of K tokens:

* **random token prediction** (MAE/MLM style): random positions are corrupted and predicted;
* **next-token prediction**: a prefix ``x_1..x_i`` is kept, every later token is blanked, and
  ``x_{i+1}`` is predicted (the official data provider: ``preserve_patches_and_fill_rest`` keeps a
  random number ``i`` of leading tokens, ``i ~ U{1, K-1}``, fills the rest with zeros or noise, and
  the next-token head predicts token ``i+1``);
* **next-all token prediction**: the same prefix input, and *all* subsequent tokens
  ``x_{i+1..K}`` are predicted.

Positions here are candidate positions (real, non-special tokens); special tokens stay visible
and are never predicted. Every random number is drawn on the CPU from the given generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from repmix.sdk.lm import IGNORE_INDEX

__all__ = ["OBJECTIVES", "alternate_objective", "prefix_blank", "sample_objectives", "suffix_targets"]

#: The sub-objectives, in the order the ``alternate`` schedule cycles through them.
OBJECTIVES = ("random", "next", "next_all")


def active_objectives(weights: Mapping[str, float]) -> list[str]:
    """The objectives with a positive weight, in :data:`OBJECTIVES` order."""
    return [k for k in OBJECTIVES if weights.get(k, 0.0) > 0]


def sample_objectives(
    weights: Mapping[str, float], rows: int, generator: torch.Generator | None = None
) -> list[str]:
    """One objective per row, drawn with probabilities ∝ ``weights`` (no draw when only one is active)."""
    active = active_objectives(weights)
    if not active:
        raise ValueError("every mixture weight is 0")
    if len(active) == 1:
        return [active[0]] * rows
    probs = torch.tensor([float(weights[k]) for k in active], dtype=torch.float64)
    picks = torch.multinomial(probs / probs.sum(), rows, replacement=True, generator=generator)
    return [active[int(i)] for i in picks]


def alternate_objective(weights: Mapping[str, float], step: int, period: int) -> str:
    """The objective of batch ``step`` under the deterministic phase switch: each active objective
    for ``period`` consecutive batches, in :data:`OBJECTIVES` order, then the next (as the official
    ``auto_mode 0``, which alternates next-token and all-token reconstruction every 100 epochs)."""
    active = active_objectives(weights)
    if not active:
        raise ValueError("every mixture weight is 0")
    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")
    return active[(step // period) % len(active)]


def prefix_blank(
    cand: Tensor, rows: Tensor, min_prefix: int = 1, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Cut each selected row after a random prefix; return ``(blank, first)`` bool ``[B, N]``.

    For a row with ``m`` candidate tokens (``rows[b]`` True and ``m > min_prefix``), the number of
    kept leading candidates ``i`` is uniform in ``[min_prefix, m - 1]``; ``blank`` marks the
    candidates after them (the suffix ``x_{i+1..m}``), ``first`` the first of those (``x_{i+1}``).
    One uniform number is drawn per row of the batch.
    """
    b, _ = cand.shape
    m = cand.sum(dim=1).cpu()
    u = torch.rand(b, generator=generator)
    span = (m - min_prefix).clamp(min=0)
    keep = (min_prefix + torch.floor(u * span).long()).clamp(max=(m - 1).clamp(min=0))
    ok = rows.cpu() & (m > min_prefix)
    rank = torch.cumsum(cand.long(), dim=1) - 1  # rank of each candidate among its row's candidates
    keep_d = keep.to(cand.device)[:, None]
    ok_d = ok.to(cand.device)[:, None]
    blank = cand & ok_d & (rank >= keep_d)
    first = cand & ok_d & (rank == keep_d)
    return blank, first


def suffix_targets(ids: Tensor, positions: Tensor) -> Tensor:
    """Targets: the original id at ``positions``, :data:`IGNORE_INDEX` elsewhere."""
    return torch.where(positions, ids, torch.full_like(ids, IGNORE_INDEX))


def row_mask(objectives: Sequence[str], name: str, device: torch.device) -> Tensor:
    """Bool ``[B]``: the rows whose objective is ``name``."""
    return torch.tensor([o == name for o in objectives], dtype=torch.bool, device=device)
