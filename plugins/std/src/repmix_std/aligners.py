"""Aligners: two granularities -> a score matrix [B_a, B_b].

``cosine`` and ``dot`` score pooled vectors; ``maxsim`` is ColBERT's late
interaction between two token sequences.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import Aligner, Alignment, ComponentConfig, Granularity, ShapeReq
from torch import Tensor

#: Score given to a document without any unmasked token (as sentence-transformers' maxsim does):
#: finite, so losses stay finite, and below every real score.
EMPTY_DOCUMENT_SCORE = -1e9

#: Default element budget of one [B_a, chunk, T_a, T_b] similarity block of ``maxsim``.
DEFAULT_CHUNK_ELEMENTS = 2**25


class CosineAligner(Aligner):
    """Cosine similarity between every pair of pooled vectors (``sentence_transformers.util.cos_sim``)."""

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("pooled", "pooled")
    citation: ClassVar[str] = (
        "Reimers & Gurevych (2019). Sentence-BERT. EMNLP 2019; computed as sentence_transformers.util.cos_sim."
    )

    class Config(ComponentConfig):
        """``cosine`` has no options."""

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """L2-normalise both sides, then take all inner products."""
        a_n = F.normalize(a.hidden, p=2, dim=1)
        b_n = F.normalize(b.hidden, p=2, dim=1)
        return Alignment(a_n @ b_n.transpose(0, 1))


class DotAligner(Aligner):
    """Inner product between every pair of pooled vectors."""

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("pooled", "pooled")
    citation: ClassVar[str] = (
        "Karpukhin et al. (2020). Dense Passage Retrieval for Open-Domain Question Answering. EMNLP 2020."
    )

    class Config(ComponentConfig):
        """``dot`` has no options."""

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """All inner products ``a @ b.T``."""
        return Alignment(a.hidden @ b.hidden.transpose(0, 1))


class MaxSimAligner(Aligner):
    """ColBERT late interaction: for each query token, the best-matching document token, summed.

    ``score(q, d) = sum_{i in q, mask} max_{j in d, mask} <q_i, d_j>``. Computed
    for all pairs at once with one matrix product per chunk of documents
    (no Python loop over pairs); documents are chunked so the
    [B_a, chunk, T_a, T_b] similarity block stays under ``chunk_elements``.
    """

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("sequence", "sequence")
    citation: ClassVar[str] = (
        "Khattab & Zaharia (2020). ColBERT: Efficient and Effective Passage Search via Contextualized "
        "Late Interaction over BERT. SIGIR 2020."
    )

    class Config(ComponentConfig):
        """Options of ``maxsim``."""

        normalize: bool = Field(True, description="L2-normalise every token vector first (as ColBERT does)")
        chunk_elements: int = Field(
            DEFAULT_CHUNK_ELEMENTS,
            ge=1,
            description="most elements of one [B_a, chunk, T_a, T_b] similarity block; bounds memory",
        )

    config: Config

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """MaxSim scores [B_a, B_b] between query sequences ``a`` and document sequences ``b``."""
        q, q_mask = a.hidden, a.full_mask()
        d, d_mask = b.hidden, b.full_mask()
        if self.config.normalize:
            q = F.normalize(q, p=2, dim=-1)
            d = F.normalize(d, p=2, dim=-1)
        n_q, t_q, dim = q.shape
        n_d, t_d, _ = d.shape
        acc = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        if n_q == 0 or n_d == 0:
            return Alignment(torch.zeros(n_q, n_d, dtype=acc, device=q.device))
        if t_d == 0:
            return Alignment(torch.full((n_q, n_d), EMPTY_DOCUMENT_SCORE, dtype=acc, device=q.device))
        chunk = max(1, min(n_d, self.config.chunk_elements // max(1, n_q * t_q * t_d)))
        flat_q = q.reshape(n_q * t_q, dim)
        q_pad = ~q_mask.unsqueeze(-1)  # [B_a, T_a, 1]
        low = torch.finfo(q.dtype).min
        blocks: list[Tensor] = []
        for start in range(0, n_d, chunk):
            dc = d[start : start + chunk]
            mc = d_mask[start : start + chunk]
            c = dc.shape[0]
            sim = (flat_q @ dc.reshape(c * t_d, dim).transpose(0, 1)).view(n_q, t_q, c, t_d)
            sim = sim.masked_fill(~mc.view(1, 1, c, t_d), low)
            best = sim.max(dim=-1).values.to(acc)  # [B_a, T_a, c]: best document token per query token
            score = best.masked_fill(q_pad, 0).sum(dim=1)  # [B_a, c]: summed over real query tokens
            blocks.append(score.masked_fill(~mc.any(dim=-1).unsqueeze(0), EMPTY_DOCUMENT_SCORE))
        return Alignment(blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1))
