"""``binary-pv.binary-code``: binary codes with a straight-through gradient (Binary PV-DBOW's binarizer).

For an input vector x (a pooled granularity, or the mean over the real positions of a sequence)::

    z = W x + b                  (bits: null keeps z = x)
    p = σ(z + ε)                 ε ~ N(0, noise_std²) in training only (the thesis' noise variant)
    c = round(p) ∈ {0, 1}        forward;   ∂c/∂p := 1 (straight through), so ∂L/∂z = σ'(z) ∂L/∂c

In eval mode (and with noise_std: 0) the code is a deterministic function of x.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

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
    masked_mean,
)
from repmix_binary_pv import CITATION


def straight_through_round(p: Tensor) -> Tensor:
    """``round(p)`` in the forward pass, the identity's gradient in the backward pass (values exactly 0/1)."""
    return p + (torch.round(p) - p).detach()


class BinaryCodePooler(Pooler):
    """``round(σ(W x + b))`` with a straight-through gradient (see the module docstring)."""

    citation: ClassVar[str] = CITATION
    source_shape: ClassVar[Literal["sequence", "pooled", "any"]] = "any"

    class Config(PoolerConfig):
        """Options of ``binary-pv.binary-code``."""

        source: str = Field("token", description="granularity read: pooled as is, a sequence mean-pooled first")
        normalize: bool = Field(False, description="must stay false: a binary code is not L2-normalised")
        bits: int | None = Field(128, ge=1, description="code length b (a learned linear map to b); null: b = input width")
        noise_std: float = Field(0.0, ge=0.0, description="std of Gaussian noise added before the sigmoid in training")

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config)
        return GranularitySpec("pooled", config.bits if config.bits is not None else spec.dim)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if config.normalize:
            raise ConfigError("binary-code: normalize must be false (codes are in {0, 1})", found=True)
        if config.bits is not None:
            if self.input_dim is None:
                raise ConfigError("binary-code needs its input width to project to bits (injected by the builder)")
            self.project: nn.Module = nn.Linear(self.input_dim, config.bits)
        else:
            self.project = nn.Identity()

    def logits(self, encoded: Encoded) -> Tensor:
        """``z = W x + b`` [B, bits]."""
        g = encoded[self.config.source]
        x = g.hidden if g.hidden.dim() == 2 else masked_mean(g.hidden, g.full_mask())
        return self.project(x)

    def forward(self, encoded: Encoded) -> Granularity:
        z = self.logits(encoded)
        if self.training and self.config.noise_std > 0:
            z = z + self.config.noise_std * torch.randn_like(z)
        return Granularity(straight_through_round(torch.sigmoid(z)))
