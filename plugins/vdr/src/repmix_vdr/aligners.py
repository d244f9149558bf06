"""``vdr.sparse-dot``: dot product of vocabulary vectors, and :func:`explain` (the shared words).

``scores[i, j] = <a_i, b_j>`` after optionally keeping only the top ``topk_a`` / ``topk_b``
entries of each side (VDR's inference-time sparsification; null keeps a side dense). With
``sparsify_at: inference`` the top-k applies only in eval mode: VDR trains its queries' top k
against *dense* passages (``vdr.vdr-nll`` re-scores through this aligner) but serves both sides
sparse. Dense ``ELU + 1`` vectors are positive in every one of their ~30k entries, so a dense dot
product is dominated by that shared mass; evaluate VDR sparse. Because
every dimension is a vocabulary entry, a score decomposes into per-word contributions
``a_i[w] · b_j[w]``: :func:`explain` lists the largest ones as readable tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field
from torch import Tensor

from repmix.sdk import Aligner, Alignment, ComponentConfig, Granularity, Runtime
from repmix_vdr import CITATION
from repmix_vdr.sparse import topk_sparsify


class SparseDotAligner(Aligner):
    """``a · bᵀ`` of (optionally top-k sparsified) vocabulary vectors."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``vdr.sparse-dot``."""

        topk_a: int | None = Field(None, ge=1, description="keep the k largest entries of each first-side vector (null: all)")
        topk_b: int | None = Field(None, ge=1, description="keep the k largest entries of each second-side vector (null: all)")
        sparsify_at: Literal["always", "inference"] = Field(
            "always", description="when topk_a / topk_b apply: always, or in eval mode only (VDR: trained dense, served sparse)"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        va, vb = a.hidden, b.hidden
        if self.config.sparsify_at == "always" or not self.training:
            if self.config.topk_a is not None:
                va = topk_sparsify(va, self.config.topk_a)
            if self.config.topk_b is not None:
                vb = topk_sparsify(vb, self.config.topk_b)
        return Alignment(va @ vb.T)


def top_terms(vector: Tensor, vocabulary: Sequence[str], top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` largest entries of one vocabulary vector as (token, weight)."""
    values, idx = vector.float().topk(min(top, vector.shape[-1]))
    return [(vocabulary[int(i)], float(v)) for v, i in zip(values, idx, strict=True) if float(v) != 0.0]


def explain(a: Tensor, b: Tensor, vocabulary: Sequence[str], top: int = 10) -> list[tuple[str, float]]:
    """Why ``a`` and ``b`` match: the ``top`` words with the largest ``a[w] · b[w]``, largest first."""
    return top_terms(a.float() * b.float(), vocabulary, top)
