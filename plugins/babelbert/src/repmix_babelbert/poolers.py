"""``babelbert.word-mean``: mean over the sub-words of a word encoded in isolation.

BabelBERT's ``mean_pooling`` averages the sub-word states of ``[CLS] w [SEP]`` without the special
tokens. A pooler sees states and a mask, not ids, so it drops the first ``skip_first`` and the last
``skip_last`` real positions of each row (1 and 1: ``[CLS]`` and ``[SEP]`` of a right- or
left-padded BERT input). A row with no position left (an empty word) falls back to all its real
positions.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field

from repmix.sdk import Encoded, Granularity, Pooler, PoolerConfig, masked_mean
from repmix_babelbert import CITATION


class WordMeanPooler(Pooler):
    """Mean of the real positions between the first ``skip_first`` and the last ``skip_last``."""

    citation: ClassVar[str] = CITATION

    class Config(PoolerConfig):
        """Options of ``babelbert.word-mean``."""

        source: str = Field("token", description="the sub-word granularity to pool")
        normalize: bool = Field(False, description="L2-normalise the pooled vector")
        skip_first: int = Field(1, ge=0, description="real positions dropped at the start ([CLS])")
        skip_last: int = Field(1, ge=0, description="real positions dropped at the end ([SEP])")

    config: Config

    def word_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The positions averaged: real, and not among the first/last special ones."""
        mask = mask.bool()
        rank = mask.long().cumsum(dim=1)  # 1-based rank of each real position
        count = rank[:, -1:]
        keep = mask & (rank > self.config.skip_first) & (rank <= count - self.config.skip_last)
        empty = ~keep.any(dim=1, keepdim=True)
        return torch.where(empty, mask, keep)

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        out = masked_mean(g.hidden, self.word_mask(g.full_mask()))
        return Granularity(F.normalize(out, dim=-1) if self.config.normalize else out)
