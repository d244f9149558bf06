"""``vdr.vocab-max``: the vocabulary vector ``v = max_t V_t``, optionally sparsified.

Official code: ``v = max_t V_t`` over *all* positions, padded ones included (a quirk: a padded
position's ``V_t`` is computed from the pad token's state). Here the max runs over the real
tokens only, so padding never changes a vector (repmix's contract); with right padding and
batch-independent inference the two agree for the longest item of a batch.

Sparsification (inference, and the retrieval index): ``topk`` keeps each row's k largest entries
(VDR: 768), and ``bow`` (the name of the encoder's bag-of-words granularity) also keeps every
entry of a word present in the input, as VDR's query side does (``topk ∪ bow``).
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from pydantic import Field

from repmix.sdk import (
    ComponentConfig,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    PipelineError,
    Pooler,
    PoolerConfig,
    masked_max,
)
from repmix_vdr import CITATION
from repmix_vdr.sparse import topk_mask


class VocabMaxPooler(Pooler):
    """Max over real tokens of a vocabulary granularity, then optional top-k ∪ bag-of-words sparsity."""

    citation: ClassVar[str] = CITATION

    class Config(PoolerConfig):
        """Options of ``vdr.vocab-max``."""

        source: str = Field("vocab", description="the per-token vocabulary granularity to pool (vdr-transformer: vocab)")
        normalize: bool = Field(False, description="L2-normalise the pooled vector (VDR: false)")
        topk: int | None = Field(
            None, ge=1, description="keep each vector's k largest entries, zero the rest (null: dense; VDR inference: 768)"
        )
        bow: str | None = Field(
            None,
            description="name of the encoder's bag-of-words granularity whose words are always kept "
            "(VDR query side: bow; needs topk)",
        )

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config)
        if config.bow is not None:
            if config.topk is None:
                raise PipelineError("vdr.vocab-max: 'bow' only widens a top-k sparsified vector; set topk as well")
            bow = encoder.granularities.get(config.bow)
            if bow is None:
                raise PipelineError(
                    f"vdr.vocab-max reads the bag-of-words granularity {config.bow!r}, which the encoder does not provide",
                    found=config.bow,
                    allowed=sorted(encoder.granularities),
                )
            if bow.shape != "pooled" or (bow.dim is not None and spec.dim is not None and bow.dim != spec.dim):
                raise PipelineError(
                    f"vdr.vocab-max: {config.bow!r} must be a pooled bag of words as wide as {config.source!r} ({spec.dim})"
                )
        if config.topk is not None and spec.dim is not None and config.topk > spec.dim:
            raise PipelineError(f"vdr.vocab-max: topk {config.topk} exceeds the vocabulary width {spec.dim}")
        return spec

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        v = masked_max(g.hidden, g.full_mask())
        if self.config.topk is not None:
            keep = topk_mask(v, self.config.topk)
            if self.config.bow is not None:
                keep = keep | (encoded[self.config.bow].hidden > 0)
            v = v.masked_fill(~keep, 0.0)
        return Granularity(F.normalize(v, dim=-1) if self.config.normalize else v)
