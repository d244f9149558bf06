"""``dse.pair-head``: DSE's siamese classifier head as an aligner (one score per pair).

Official code (``dse_siamese_classifier.py``): ``f = [u; v; u∘v; |u−v|]`` (4·D features) ->
Linear(4·D, hidden) -> ReLU -> Linear(hidden, C). repmix aligners score every pair of the two
sides, so the head is applied to all B_a x B_b pairs (in row chunks) and C = 1: a regression
value or a binary logit.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from repmix.sdk import (
    Aligner,
    Alignment,
    ComponentConfig,
    ConfigError,
    Granularity,
    Runtime,
)
from torch import Tensor, nn

from repmix_dse import CITATION


def pair_features(u: Tensor, v: Tensor) -> Tensor:
    """``[u; v; u∘v; |u−v|]`` along the last dimension (broadcasting u and v)."""
    u, v = torch.broadcast_tensors(u, v)
    return torch.cat((u, v, u * v, (u - v).abs()), dim=-1)


class PairHeadAligner(Aligner):
    """MLP over DSE's pair features; ``scores[i, j] = head([a_i; b_j; a_i∘b_j; |a_i−b_j|])``."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dse.pair-head``."""

        hidden: int = Field(512, ge=1, description="width of the hidden layer (DSE: 512)")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the pair features in training")
        chunk_pairs: int = Field(
            65536, ge=1, description="pairs scored at once (bounds the [pairs, 4·D] feature memory)"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if runtime.sides is None or runtime.sides[0].dim is None:
            raise ConfigError("dse.pair-head needs the dimension of the granularities it aligns (injected by the builder)")
        dim = int(runtime.sides[0].dim)
        self.dim = dim
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(4 * dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1)
        )

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        """One score per aligned row pair (u_i, v_i): shape [B]."""
        return self.head(pair_features(u, v)).squeeze(-1)

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """Score every (a_i, b_j): [B_a, B_b]."""
        u, v = a.hidden, b.hidden
        rows = max(1, self.config.chunk_pairs // max(1, v.shape[0]))
        chunks = [
            self.score_pairs(u[start : start + rows].unsqueeze(1), v.unsqueeze(0))
            for start in range(0, u.shape[0], rows)
        ]
        return Alignment(torch.cat(chunks, dim=0) if chunks else u.new_zeros(0, v.shape[0]))
