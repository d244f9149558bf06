"""Masked poolers: sequence granularity [B, N, D] + mask -> pooled [B, D].

Each computes what sentence-transformers' ``Pooling`` module computes for the
same mode (``cls``, ``mean``, ``max``, ``lasttoken``), with the padded
positions excluded by masking, so padding never changes the pooled vector
(``masked_fill`` rather than multiplying by the mask, so even non-finite
values at padded positions cannot leak in). ``normalize: true`` L2-normalises
the output as sentence-transformers' ``Normalize`` module does.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import Encoded, Granularity, Pooler, PoolerConfig
from repmix.sdk.pooling import (
    first_real_token,
    last_real_token,
    masked_max,
    masked_mean,
)
from torch import Tensor

_SBERT = (
    "Reimers & Gurevych (2019). Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks. "
    "EMNLP 2019. Pooling as in sentence-transformers' Pooling module."
)


class _StdPoolerConfig(PoolerConfig):
    """Options shared by the std poolers."""

    source: str = Field("token", description="the sequence granularity to pool")
    normalize: bool = Field(False, description="L2-normalise the pooled vector")


class _MaskedPooler(Pooler):
    """Reads ``source`` with its mask, pools it, optionally L2-normalises."""

    Config: ClassVar[type[PoolerConfig]] = _StdPoolerConfig
    config: _StdPoolerConfig

    @abstractmethod
    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Pool [B, N, D] with a bool mask [B, N] (True = real token) into [B, D]."""

    def forward(self, encoded: Encoded) -> Granularity:
        """Pool the source granularity into one vector per item."""
        source = encoded[self.config.source]
        out = self.pool(source.hidden, source.full_mask())
        if self.config.normalize:
            out = F.normalize(out, p=2, dim=-1)
        return Granularity(out)


class ClsPooler(_MaskedPooler):
    """The first real token's vector (``[CLS]`` for BERT; the first unmasked position under left padding)."""

    citation: ClassVar[str] = _SBERT

    class Config(_StdPoolerConfig):
        """Options of ``cls``."""

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Gather the first position whose mask is true."""
        return first_real_token(hidden, mask)


class MeanPooler(_MaskedPooler):
    """Mean over real tokens: sum of masked vectors / clamp(count, min=1e-9)."""

    citation: ClassVar[str] = _SBERT

    class Config(_StdPoolerConfig):
        """Options of ``mean``."""

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Masked mean, accumulated in float32 for half-precision inputs."""
        return masked_mean(hidden, mask)


class MaxPooler(_MaskedPooler):
    """Element-wise max over real tokens (padded positions set to the dtype's most negative value)."""

    citation: ClassVar[str] = _SBERT

    class Config(_StdPoolerConfig):
        """Options of ``max``."""

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Masked max; an item without real tokens gets the dtype's minimum."""
        return masked_max(hidden, mask)


class LastTokenPooler(_MaskedPooler):
    """The last real token's vector (for decoder models), correct under left or right padding."""

    citation: ClassVar[str] = (
        "Muennighoff (2022). SGPT: GPT Sentence Embeddings for Semantic Search. arXiv:2202.08904. "
        "Computed as sentence-transformers' Pooling(pooling_mode='lasttoken')."
    )

    class Config(_StdPoolerConfig):
        """Options of ``last-token``."""

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Gather the last position whose mask is true; zeros for an item without real tokens."""
        return last_real_token(hidden, mask)
