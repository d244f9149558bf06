"""Size-weighted mean pooling of merged tokens."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from repmix.sdk import Encoded, Granularity, InputError, Pooler, PoolerConfig, Runtime, masked_mean

from .encoder import SIZES_KEY


class SizeWeightedMeanPooler(Pooler):
    """Σ_i s_i x_i / Σ_i s_i over the real tokens, s = the token sizes the ``pitome`` encoder reports.

    After PiToMe merging a token stands for s_i original tokens; weighting by
    s_i makes the pooled vector the mean over the original tokens of the
    (merged) states, which is what mean pooling reads without merging. With
    no sizes in the encoder output (any other encoder) it is the plain masked
    mean.
    """

    citation: ClassVar[str] = (
        "Tran et al. (2024). Accelerating Transformers with Spectrum-Preserving Token Merging. NeurIPS 2024; "
        "Bolya et al. (2023). Token Merging: Your ViT but Faster. ICLR 2023 (size-weighted averages)."
    )

    class Config(PoolerConfig):
        """Options of ``size-mean`` (``source``: the merged granularity; ``normalize``: L2-normalise)."""

    def __init__(self, config: PoolerConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, encoded: Encoded) -> Granularity:
        """Pool ``source`` [B, T, D] into [B, D]."""
        g = encoded[self.config.source]
        mask = g.full_mask()
        sizes = encoded.extras.get(SIZES_KEY) if self.config.source == "token" else None
        if sizes is None:
            pooled = masked_mean(g.hidden, mask)
        else:
            if sizes.shape != mask.shape:
                raise InputError(f"token sizes {tuple(sizes.shape)} do not match the tokens {tuple(mask.shape)}")
            w = sizes.to(g.hidden.dtype).masked_fill(~mask, 0.0)
            num = (g.hidden.masked_fill(~mask.unsqueeze(-1), 0.0) * w.unsqueeze(-1)).sum(dim=1)
            pooled = num / w.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return Granularity(nn.functional.normalize(pooled, dim=-1) if self.config.normalize else pooled)


__all__ = ["SizeWeightedMeanPooler"]
