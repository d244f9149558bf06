"""``dse.top-layers-mean``: DSE's sentence vector, the token mean of the concatenated top layers.

Official code (``BertSumConcatTopHiddenEmbeddingsPooler``): ``u = mean_{t >= 1, mask}
concat(h^{L-3}_t, ..., h^{L}_t)``: the top four layers' states are concatenated per token and
averaged over the real tokens, position 0 (CLS) excluded and SEP included.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    PipelineError,
    Pooler,
    PoolerConfig,
    Runtime,
)
from repmix.sdk.pooling import masked_mean

from repmix_dse import CITATION


class TopLayersMeanPooler(Pooler):
    """Mean over real tokens, position 0 excluded, of the concatenated top ``layers`` hidden states.

    Reads ``Encoded.layers`` (the last ``layers`` entries, oldest first, as the official
    ``torch.cat(hidden[-4:], -1)``) and the mask of ``source``. An item whose only real
    token is position 0 falls back to that token (the official code would divide by zero).
    """

    citation: ClassVar[str] = CITATION
    needs_layers: ClassVar[bool] = True

    class Config(PoolerConfig):
        """Options of ``dse.top-layers-mean``."""

        layers: int = Field(4, ge=1, description="how many of the top layers to concatenate (DSE: 4)")
        skip_first: bool = Field(True, description="exclude position 0 (CLS) from the mean, as DSE does")

    config: Config

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> GranularitySpec:  # type: ignore[override]
        """A pooled vector of ``layers`` times the source's width."""
        spec = super().signature(config, encoder)
        if encoder.num_layers is not None and encoder.num_layers < config.layers:
            raise PipelineError(
                f"top-layers-mean concatenates {config.layers} layers, but the encoder exposes only "
                f"{encoder.num_layers} per-layer states",
                found=config.layers,
                hint=f"set layers to at most {encoder.num_layers}",
            )
        return GranularitySpec("pooled", None if spec.dim is None else spec.dim * config.layers)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, encoded: Encoded) -> Granularity:
        """``u = sum_t m_t · concat(h_t) / sum_t m_t`` with ``m_0 = 0`` (when ``skip_first``)."""
        c = self.config
        if encoded.layers is None or len(encoded.layers) < c.layers:
            have = 0 if encoded.layers is None else len(encoded.layers)
            raise PipelineError(f"top-layers-mean needs {c.layers} per-layer states, got {have}")
        mask = encoded[c.source].full_mask()
        hidden = torch.cat(tuple(encoded.layers[-c.layers :]), dim=-1)
        weights = mask.clone()
        if c.skip_first and weights.shape[1] > 1:
            weights[:, 0] = False
            alone = ~weights.any(dim=1)  # only position 0 is real: keep it
            weights[:, 0] = mask[:, 0] & alone
        pooled = masked_mean(hidden, weights)
        return Granularity(F.normalize(pooled, dim=-1) if c.normalize else pooled)
