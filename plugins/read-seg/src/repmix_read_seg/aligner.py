"""``read-seg``: a ``<SEG>`` embedding against image patch tokens -> scores, similarity maps, point prompts.

READ (Qian, Yin, Dou; CVPR 2025, arXiv:2412.17741), official code ``rui-qian/READ``
(``model/READ.py``: ``similarity_as_points``, ``similarity_map_to_points``, ``Discrete_to_Continuous``):

1. sim_j = <h_img_j, h_SEG> over the image's patch tokens (CLIP-Surgery weight 1 for one text token);
2. reshape to the patch grid and bilinearly downsample by ``downsample`` (2);
3. min-max normalise; pad to the image's aspect ratio with -1;
4. label each cell: positive if >= t_pos (0.8), negative if in [0, t_neg] (0.2), neutral (-1) otherwise;
5. keep the first K (30) of [positives by decreasing value, negatives by increasing value, neutrals];
6. map cell centres to image coordinates (x, y);
7. differentiable point: w = exp(-||grid - p||^2) softmax(sim), normalised; p' = sum w grid.

There is no SAM here: the points are the output (``Alignment.detail``), and the score matrix
[B_a, B_b] is each SEG's best patch similarity (``score: max``) or a smooth maximum
(``score: logsumexp``), so the aligner also ranks images for a SEG query.

Deviation: a flat similarity map (max = min) divides by zero in the official code; here every
cell of a flat map becomes 0.5 (neutral), so no NaN reaches the points.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from repmix.sdk import Aligner, Alignment, ComponentConfig, Granularity, Runtime
from torch import Tensor

CITATION = (
    "Qian, Yin, Dou (2025). Reasoning to Attend: Try to Understand How <SEG> Token Works. CVPR 2025. "
    "arXiv:2412.17741. Code: rui-qian/READ."
)


def normalise_map(sm: Tensor, downsample: int = 2) -> Tensor:
    """Bilinear downsampling by ``downsample`` then min-max normalisation (a flat map -> 0.5 everywhere)."""
    x = sm[None, None].float()
    if downsample > 1 and min(sm.shape) >= downsample:
        x = F.interpolate(x, scale_factor=1.0 / downsample, mode="bilinear", align_corners=False)
    m = x[0, 0]
    lo, hi = m.min(), m.max()
    if float(hi - lo) <= 1e-12:
        return torch.full_like(m, 0.5)
    return (m - lo) / (hi - lo)


def pad_to_aspect(m: Tensor, image_hw: tuple[float, float]) -> Tensor:
    """Pad (right or bottom) with -1 so the map has the image's aspect ratio."""
    h, w = m.shape
    ih, iw = image_hw
    want_w = round(h * iw / ih)
    if want_w > w:
        return torch.cat([m, m.new_full((h, want_w - w), -1.0)], dim=1)
    want_h = round(w * ih / iw)
    if want_h > h:
        return torch.cat([m, m.new_full((want_h - h, w), -1.0)], dim=0)
    return m


def label_cells(m: Tensor, t_pos: float = 0.8, t_neg: float = 0.2) -> Tensor:
    """1 where m >= t_pos, 0 where 0 <= m <= t_neg, -1 (neutral) elsewhere (padding -1 is neutral)."""
    labels = torch.full(m.shape, -1, dtype=torch.long, device=m.device)
    labels[(m >= 0) & (m <= t_neg)] = 0
    labels[m >= t_pos] = 1
    return labels


def similarity_map_to_points(
    sm: Tensor,
    image_hw: tuple[float, float],
    *,
    t_pos: float = 0.8,
    t_neg: float = 0.2,
    k: int = 30,
    downsample: int = 2,
) -> tuple[Tensor, Tensor, Tensor]:
    """Point prompts from a similarity map ``[h, w]``: (points [K', 2] as (x, y) in image coordinates, labels [K'], values [K'])."""
    m = pad_to_aspect(normalise_map(sm, downsample), image_hw)
    labels = label_cells(m, t_pos, t_neg).flatten()
    values = m.flatten()
    idx = torch.arange(values.numel(), device=m.device)
    pos, neg, neu = idx[labels == 1], idx[labels == 0], idx[labels == -1]
    pos = pos[torch.argsort(values[pos], descending=True, stable=True)]
    neg = neg[torch.argsort(values[neg], stable=True)]
    order = torch.cat([pos, neg, neu])[:k]
    hp, wp = m.shape
    rows, cols = order // wp, order % wp
    xs = (cols.float() + 0.5) * image_hw[1] / wp
    ys = (rows.float() + 0.5) * image_hw[0] / hp
    return torch.stack([xs, ys], dim=1), labels[order], values[order]


def discrete_to_continuous(sm: Tensor, point: Tensor) -> Tensor:
    """Soft-argmax around a discrete cell ``point`` (row, col): sum_j w_j grid_j, w ∝ exp(-||grid - p||^2) softmax(sm)_j."""
    h, w = sm.shape
    rows, cols = torch.meshgrid(torch.arange(h, device=sm.device), torch.arange(w, device=sm.device), indexing="ij")
    grid = torch.stack([rows, cols], -1).reshape(-1, 2).to(sm.dtype)
    weights = torch.exp(-((grid - point.to(sm.dtype)) ** 2).sum(-1)) * torch.softmax(sm.flatten(), dim=0)
    weights = weights / weights.sum()
    return (weights[:, None] * grid).sum(0)


class ReadSegAligner(Aligner):
    """SEG embeddings (pooled) x image patch tokens (sequence) -> scores [B_a, B_b] + READ's point prompts."""

    citation: ClassVar[str] = CITATION
    accepts = ("pooled", "sequence")

    class Config(ComponentConfig):
        """Options of ``read-seg``."""

        score: Literal["max", "logsumexp"] = Field("max", description="how a similarity map becomes one score")
        temperature: float = Field(0.1, gt=0, description="logsumexp: tau in tau * log sum exp(sim / tau)")
        grid: tuple[int, int] | None = Field(None, description="patch grid (rows, cols); null: square from the patch count")
        image_size: tuple[float, float] | None = Field(None, description="(H, W) of the image for point coordinates; null: the grid")
        t_pos: float = Field(0.8, ge=0, le=1, description="positive threshold (13B setting: 0.6)")
        t_neg: float = Field(0.2, ge=0, le=1, description="negative threshold")
        points: int = Field(30, ge=1, description="K: point prompts kept (13B setting: 60)")
        downsample: int = Field(2, ge=1, description="bilinear downsampling factor of the map")
        details: bool = Field(True, description="compute point prompts for paired items (B_a = B_b, the diagonal)")

        @model_validator(mode="after")
        def _thresholds(self) -> ReadSegAligner.Config:
            if self.t_neg >= self.t_pos:
                raise ValueError(f"t_neg {self.t_neg} must be below t_pos {self.t_pos}")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def similarity(self, a: Granularity, b: Granularity) -> Tensor:
        """sim [B_a, B_b, N]: dot products, -inf at padded patches."""
        sim = torch.einsum("ad,bnd->abn", a.hidden, b.hidden)
        return sim.masked_fill(~b.full_mask()[None], float("-inf"))

    def _grid(self, n: int) -> tuple[int, int] | None:
        if self.config.grid is not None:
            return self.config.grid if self.config.grid[0] * self.config.grid[1] == n else None
        side = math.isqrt(n)
        return (side, side) if side * side == n else None

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        c = self.config
        sim = self.similarity(a, b)
        if c.score == "max":
            scores = sim.amax(dim=-1)
        else:
            scores = c.temperature * torch.logsumexp(sim / c.temperature, dim=-1)
        detail: dict[str, Any] = {}
        if c.details and a.hidden.shape[0] == b.hidden.shape[0]:
            mask = b.full_mask()
            points, labels, soft = [], [], []
            for i in range(a.hidden.shape[0]):
                n = int(mask[i].sum())
                grid = self._grid(n)
                if grid is None or not bool(mask[i, :n].all()):
                    break
                sm = sim[i, i, :n].reshape(grid)
                hw = c.image_size or (float(grid[0]), float(grid[1]))
                p, lab, _ = similarity_map_to_points(sm.detach(), hw, t_pos=c.t_pos, t_neg=c.t_neg, k=c.points, downsample=c.downsample)
                peak = torch.tensor(divmod(int(sm.detach().argmax()), grid[1]), dtype=sm.dtype, device=sm.device)
                points.append(p)
                labels.append(lab)
                soft.append(discrete_to_continuous(sm, peak))
            else:
                if points and len({len(p) for p in points}) == 1:
                    detail = {"points": torch.stack(points), "labels": torch.stack(labels), "soft_points": torch.stack(soft)}
        return Alignment(scores, detail)
