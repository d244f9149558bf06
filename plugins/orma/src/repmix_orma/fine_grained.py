"""ORMA's SPARC-like similarity-weighted pooling (token–atom and multitoken–motif levels).

For one (text, molecule) pair with first-side elements ``x`` [N, D] (tokens or
multi-tokens) and second-side elements ``y`` [K, D] (atoms or motifs), ORMA's
``get_sparc_rep`` / ``get_local_logits`` / ``get_mid_logits`` (official code,
``modeling.py``) compute

1. ``s = x @ y.T`` [N, K];
2. min–max normalisation of each row over the second side,
   ``s = (s - min) / (max - min + eps)``, then entries involving padding set to ``eps``;
3. weights ``w = s / (sum_k s + eps)`` and grouped vectors ``g = w @ y`` [N, D];
4. L2 normalisation of ``x`` and ``g`` and a sum over the N positions;
5. ``LayerNorm(D, elementwise_affine=False)`` of each sum,

and score two items by the inner product of the two pooled vectors. The
pooled second-side vector depends on both members of the pair, so a B × B
logit matrix needs a convention for unpaired (text, molecule) combinations;
see :class:`WeightedPoolingAligner` (``train_scoring``) and
docs/plugins/orma-alignment.md.

:func:`sparc_pool` is the one implementation of steps 1–5. It works on
broadcastable leading dimensions, so the same code scores B aligned pairs
(``[B, N, D]`` with ``[B, K, D]``) or every pair of two sets at once
(``[B_a, 1, N, D]`` with ``[1, B_b, K, D]``); the optimal-transport aligner
(:mod:`repmix_orma.ot`) reuses it for the multitoken–motif level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    Aligner,
    Alignment,
    ComponentConfig,
    Granularity,
    InputError,
    Runtime,
    ShapeReq,
)
from torch import Tensor

#: ORMA's LayerNorm (``nn.LayerNorm(emb_dim, elementwise_affine=False)``) uses torch's default eps.
LAYER_NORM_EPS = 1e-5
#: Default element budget of one block of pairs in ``all-pairs`` scoring (bounds memory).
DEFAULT_CHUNK_ELEMENTS = 2**25
#: Default cap on the size of per-pair tensors kept in ``Alignment.detail``.
DEFAULT_DETAIL_MAX_ELEMENTS = 2**22

ORMA_CITATION = (
    "Min, Liu, Zhang, Song, Su, He & Bo (2024). ORMA: Exploring Optimal Transport-Based Multi-Grained "
    "Alignments for Text-Molecule Retrieval. IEEE BIBM 2024, arXiv:2411.11875; official code "
    "github.com/XMUDeepLIT/Orma (modeling.py: get_sparc_rep, get_local_logits, get_mid_logits)."
)
SPARC_CITATION = (
    "Bica et al. (2024). Improving fine-grained understanding in image-text pre-training (SPARC). ICML 2024."
)

TrainScoring = Literal["paired", "all-pairs"]


def sparc_pool(
    x: Tensor,
    x_mask: Tensor,
    y: Tensor,
    y_mask: Tensor,
    *,
    epsilon: float,
    include_padding: bool,
) -> tuple[Tensor, Tensor]:
    """ORMA's similarity-weighted pooling of aligned pairs; returns the two LayerNormed pooled vectors.

    Args:
        x: first-side elements ``[..., N, D]`` (tokens, multi-tokens).
        x_mask: ``[..., N]`` bool, True = real element.
        y: second-side elements ``[..., K, D]`` (atoms, motifs).
        y_mask: ``[..., K]`` bool.
        epsilon: ORMA's ``config.epsilon``: added to the min–max and weight
            denominators and, with ``include_padding``, the value given to
            similarities that involve padding.
        include_padding: reproduce the official code's treatment of padding:
            min and max run over every second-side slot, padded entries get
            similarity ``epsilon`` (so a padded row's weights are uniform over
            all slots) and the sums run over every first-side position. When
            False, only real elements take part: min/max over real second-side
            elements, zero weight on padded ones, sums over real positions, so
            padded slots (and their values) cannot change the result.

    Leading dimensions broadcast: ``[B, N, D]`` with ``[B, K, D]`` pools B aligned
    pairs, ``[B_a, 1, N, D]`` with ``[1, B_b, K, D]`` every pair of two sets.

    Returns:
        ``(first, second)``, each ``[..., D]``: ``LayerNorm(sum_n normalize(x_n))``
        and ``LayerNorm(sum_n normalize(g_n))`` with ``g = w @ y``.
    """
    sim = torch.einsum("...nd,...kd->...nk", x, y)
    pair = x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)
    if include_padding:
        low = sim.amin(dim=-1, keepdim=True)
        high = sim.amax(dim=-1, keepdim=True)
        sim = ((sim - low) / (high - low + epsilon)).masked_fill(~pair, epsilon)
    else:
        real_col = y_mask.unsqueeze(-2)
        has_col = real_col.any(dim=-1, keepdim=True)
        low = sim.masked_fill(~real_col, torch.inf).amin(dim=-1, keepdim=True)
        high = sim.masked_fill(~real_col, -torch.inf).amax(dim=-1, keepdim=True)
        # Rows without any real column keep finite (unused) bounds, so no NaN reaches the gradient.
        low = torch.where(has_col, low, torch.zeros_like(low))
        high = torch.where(has_col, high, torch.zeros_like(high))
        sim = ((sim - low) / (high - low + epsilon)).masked_fill(~pair, 0.0)
    weights = sim / (sim.sum(dim=-1, keepdim=True) + epsilon)
    grouped = torch.einsum("...nk,...kd->...nd", weights, y)
    x_unit = F.normalize(x, p=2, dim=-1)
    g_unit = F.normalize(grouped, p=2, dim=-1)
    if not include_padding:
        rows = x_mask.unsqueeze(-1).to(x_unit.dtype)
        x_unit = x_unit * rows
        g_unit = g_unit * rows
    dim = x.shape[-1]
    first = F.layer_norm(x_unit.sum(dim=-2), (dim,), eps=LAYER_NORM_EPS)
    second = F.layer_norm(g_unit.sum(dim=-2), (dim,), eps=LAYER_NORM_EPS)
    return first, second


def pair_blocks(n_a: int, n_b: int, per_pair: int, budget: int) -> Iterator[tuple[slice, slice]]:
    """Blocks (rows, columns) of the ``n_a × n_b`` pairs, each holding at most ``budget // per_pair`` pairs.

    Columns are split first; rows only when a single column of all rows exceeds the budget.
    """
    pairs = max(1, budget // max(1, per_pair))
    rows = min(n_a, pairs)
    cols = max(1, min(n_b, pairs // max(1, rows)))
    for r0 in range(0, n_a, rows):
        for c0 in range(0, n_b, cols):
            yield slice(r0, min(n_a, r0 + rows)), slice(c0, min(n_b, c0 + cols))


PairFn = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, dict[str, Tensor]]]


def score_pairs(
    pair_fn: PairFn,
    a: Tensor,
    a_mask: Tensor,
    b: Tensor,
    b_mask: Tensor,
    *,
    paired: bool,
    per_pair: int,
    chunk_elements: int,
    detail_max_elements: int,
) -> Alignment:
    """Turn a per-pair pooling function into a ``[B_a, B_b]`` score matrix.

    ``pair_fn(x, x_mask, y, y_mask)`` receives broadcastable pairs and returns
    the two pooled vectors ``[..., D]`` and per-pair detail tensors ``[..., *]``.

    * ``paired``: pair ``p`` is (``a[p]``, ``b[p]``); ``scores = first @ second.T``
      (ORMA's training logits: row ``i`` uses pair (i, i), column ``j`` pair (j, j)).
      Needs ``B_a == B_b``.
    * otherwise (``all-pairs``): every (``a[i]``, ``b[j]``) is its own pair and
      ``scores[i, j] = first_ij · second_ij``, computed in blocks of pairs whose
      tensors stay under ``chunk_elements`` (``per_pair`` elements per pair).

    ``Alignment.detail`` holds ``scoring`` (the mode used) and, when their total
    size stays under ``detail_max_elements``, the pooled vectors ``first`` and
    ``second`` and the pair function's detail tensors, detached: ``[B, ...]`` per
    pair when paired, ``[B_a, B_b, ...]`` for all pairs.
    """
    n_a, n_b = a.shape[0], b.shape[0]
    if paired:
        if n_a != n_b:
            raise InputError(f"paired scoring needs as many items on both sides, got {n_a} and {n_b}")
        first, second, extra = pair_fn(a, a_mask, b, b_mask)
        parts = {"first": first, "second": second, **extra}
        detail: dict[str, Any] = {"scoring": "paired"}
        if sum(t.numel() for t in parts.values()) <= detail_max_elements:
            detail.update({k: v.detach() for k, v in parts.items()})
        return Alignment(first @ second.transpose(0, 1), detail)
    rows: list[list[Tensor]] = []
    kept: dict[str, list[list[Tensor]]] | None = None
    for rs, cs in pair_blocks(n_a, n_b, per_pair, chunk_elements):
        first, second, extra = pair_fn(
            a[rs].unsqueeze(1), a_mask[rs].unsqueeze(1), b[cs].unsqueeze(0), b_mask[cs].unsqueeze(0)
        )
        r, c = rs.stop - rs.start, cs.stop - cs.start
        parts = {"first": first, "second": second, **extra}
        if kept is None:
            size = sum(int(t[0, 0].numel()) for t in parts.values()) * n_a * n_b
            kept = {k: [] for k in parts} if size <= detail_max_elements else {}
        if cs.start == 0:
            rows.append([])
            for blocks in kept.values():
                blocks.append([])
        rows[-1].append((first * second).sum(dim=-1))
        for name, blocks in kept.items():
            t = parts[name].detach()
            blocks[-1].append(t.expand(r, c, *t.shape[2:]))
    out: dict[str, Any] = {"scoring": "all-pairs"}
    for name, blocks in (kept or {}).items():
        out[name] = torch.cat([torch.cat(row, dim=1) for row in blocks], dim=0)
    return Alignment(torch.cat([torch.cat(row, dim=1) for row in rows], dim=0), out)


def empty_scores(x: Tensor, y: Tensor) -> Tensor:
    """Zero scores ``[B_a, B_b]`` for sides without elements, still attached to both inputs' graphs."""
    zeros = torch.zeros(x.shape[0], y.shape[0], dtype=x.dtype, device=x.device)
    return zeros + 0.0 * (x.sum() + y.sum())


def check_scoring_inputs(a: Granularity, b: Granularity) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The hidden states and boolean masks of two sequence granularities."""
    for side, g in (("first", a), ("second", b)):
        if g.hidden.dim() != 3:
            raise InputError(f"the {side} side must be a sequence granularity [B, N, D], got shape {tuple(g.hidden.shape)}")
    if a.hidden.shape[-1] != b.hidden.shape[-1]:
        raise InputError(f"both sides need the same dimension, got {a.hidden.shape[-1]} and {b.hidden.shape[-1]}")
    return a.hidden, a.full_mask(), b.hidden, b.full_mask()


def use_paired(module: torch.nn.Module, train_scoring: TrainScoring, n_a: int, n_b: int) -> bool:
    """Whether ``module`` scores paired pairs now: in training mode with ``train_scoring: paired``.

    Raises :class:`InputError` when paired scoring is due but the sides differ in size.
    """
    paired = module.training and train_scoring == "paired"
    if paired and n_a != n_b:
        raise InputError(
            f"train_scoring 'paired' pairs row i with column i (ORMA's training logits) and needs as many "
            f"items on both sides, got {n_a} and {n_b}",
            hint="use train_scoring: all-pairs when the second side carries extra (hard-negative) items",
        )
    return paired


class WeightedPoolingAligner(Aligner):
    """ORMA's token–atom level: SPARC-like similarity-weighted pooling of two sequences -> [B_a, B_b] logits.

    ``between: [text.token, molecule.atom]``. See :func:`sparc_pool` for the
    computation. In training with ``train_scoring: paired`` (ORMA) the logits
    are ``first_i · second_j`` where ``first_i`` is text ``i``'s pooled tokens
    and ``second_j`` the pooled grouped atoms of the pair (text ``j``,
    molecule ``j``); in evaluation mode, and in training with
    ``train_scoring: all-pairs``, every (text ``i``, molecule ``j``) is pooled
    as its own pair: ``score = first_ij · second_ij`` (exact, ``B_a·B_b``
    pairs, computed in blocks).
    """

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("sequence", "sequence")
    citation: ClassVar[str] = ORMA_CITATION + " " + SPARC_CITATION

    class Config(ComponentConfig):
        """Options of ``orma.weighted-pooling``."""

        epsilon: float = Field(
            1e-8,
            gt=0,
            description="ORMA's config.epsilon: stabilises the min-max and weight denominators; with "
            "include_padding also the similarity given to padded entries",
        )
        include_padding: bool = Field(
            False,
            description="reproduce the official code's padding: min/max over every second-side slot, "
            "padded entries weighted epsilon, sums over every first-side position (scores then depend on "
            "how much padding the batch has)",
        )
        train_scoring: TrainScoring = Field(
            "paired",
            description="training logits: 'paired' (ORMA: column j pooled with its own pair (j, j), needs "
            "B_a == B_b) or 'all-pairs' (every (i, j) pooled as a pair, as evaluation always does)",
        )
        chunk_elements: int = Field(
            DEFAULT_CHUNK_ELEMENTS, ge=1, description="element budget of one block of pairs in all-pairs scoring"
        )
        detail_max_elements: int = Field(
            DEFAULT_DETAIL_MAX_ELEMENTS,
            ge=0,
            description="keep the pooled vectors (per pair) in Alignment.detail while their total size "
            "stays under this many elements",
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def _pool(self, x: Tensor, xm: Tensor, y: Tensor, ym: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        first, second = sparc_pool(
            x, xm, y, ym, epsilon=self.config.epsilon, include_padding=self.config.include_padding
        )
        return first, second, {}

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """Logits [B_a, B_b] between first-side sequences ``a`` (tokens) and second-side sequences ``b`` (atoms)."""
        x, xm, y, ym = check_scoring_inputs(a, b)
        paired = use_paired(self, self.config.train_scoring, x.shape[0], y.shape[0])
        n, k, d = x.shape[1], y.shape[1], x.shape[-1]
        if x.shape[0] == 0 or y.shape[0] == 0 or n == 0 or k == 0:
            return Alignment(empty_scores(x, y), {"scoring": "paired" if paired else "all-pairs"})
        return score_pairs(
            self._pool, x, xm, y, ym,
            paired=paired,
            per_pair=3 * n * k + 3 * n * d,
            chunk_elements=self.config.chunk_elements,
            detail_max_elements=self.config.detail_max_elements,
        )
