"""``lama``: low-rank multi-head attention pooling against a global context vector.

For token states h_t (t = 1..T, real tokens only) and m heads::

    f_t = tanh((P^T c) ⊙ (Q^T h_t))           in R^m       P, Q in R^{d x m}, c in R^d (learned)
    a_{i,t} = softmax_t(f_{i,t})                              over the real tokens, per head i
    M = A H                                   in R^{m x d}  each row a convex combination of the h_t
    output = flatten(M) in R^{m d}  (output: concat, the paper)   or   mean_i M_i in R^d  (output: mean)

Head i scores token t with the bilinear form c^T (p_i q_i^T) h_t, a rank-one factor of a
d x d matrix: m heads cost 2dm + d parameters and O(T d m) time, against O(T^2 d) for
multi-head self-attention. c is one learned global context vector, as in the public
PyTorch port (JohnGiorgi/compact-multi-head-self-attention-pytorch); P, Q and c are
initialised Xavier-uniform as there.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Pooler,
    PoolerConfig,
    Runtime,
)
from torch import Tensor, nn


def parameter_count(dim: int, heads: int) -> int:
    """The paper's count: P and Q (d x m each) plus the context vector c (d): 2dm + d."""
    return 2 * dim * heads + dim


class LamaPooler(Pooler):
    """LAMA: m low-rank attention heads scored against a learned global context vector."""

    citation: ClassVar[str] = (
        "Mehta, Rangwala & Ramakrishnan (2019). Low Rank Factorization for Compact Multi-Head Self-Attention. "
        "arXiv:1912.00835."
    )

    class Config(PoolerConfig):
        """Options of ``lama``."""

        source: str = Field("token", description="the sequence granularity to pool")
        normalize: bool = Field(False, description="L2-normalise the pooled vector")
        heads: int = Field(4, ge=1, description="number m of attention heads (rank-one factors)")
        output: Literal["concat", "mean"] = Field(
            "concat", description="concat: flatten the m x d sentence matrix (the paper); mean: average its rows (d)"
        )
        activation: Literal["tanh", "none"] = Field("tanh", description="applied to the head scores before the softmax")

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """Pooled; m·d wide for ``output: concat``."""
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config)
        if spec.dim is None or config.output == "mean":
            return spec
        return GranularitySpec("pooled", spec.dim * config.heads)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if self.input_dim is None:
            raise ConfigError("lama needs its input width (injected by the builder)")
        d, m = self.input_dim, self.config.heads
        self.p = nn.Parameter(torch.empty(d, m))
        self.q = nn.Parameter(torch.empty(d, m))
        self.context = nn.Parameter(torch.empty(d))
        nn.init.xavier_uniform_(self.p)
        nn.init.xavier_uniform_(self.q)
        bound = math.sqrt(6.0 / (d + 1))  # Xavier-uniform of c as a d x 1 matrix
        nn.init.uniform_(self.context, -bound, bound)

    def attention(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Attention weights [B, m, T]: per head, a distribution over the real tokens (0 on padding)."""
        scores = (self.context @ self.p) * (hidden @ self.q)  # [m] * [B, T, m]
        if self.config.activation == "tanh":
            scores = torch.tanh(scores)
        scores = scores.transpose(1, 2).masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = scores.softmax(dim=-1)
        return weights.nan_to_num(0.0)  # an item without real tokens gets all-zero weights, not NaN

    def forward(self, encoded: Encoded) -> Granularity:
        """M = A H, flattened (concat) or averaged over heads (mean)."""
        g = encoded[self.config.source]
        mask = g.full_mask()
        hidden = g.hidden.masked_fill(~mask.unsqueeze(-1), 0)  # garbage at padded positions cannot leak (0 * inf)
        matrix = self.attention(hidden, mask) @ hidden  # [B, m, d]
        out = matrix.flatten(1) if self.config.output == "concat" else matrix.mean(dim=1)
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)
