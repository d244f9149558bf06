"""``orma.project``: ORMA's per-level projection into the shared space, as a pooler.

ORMA projects every representation level of the text into the space shared
with the molecule (ORMA.md §1.1; ``modeling.Orma.get_rep``):

* sentence: ``Linear(768, emb_dim)`` then ``LayerNorm(emb_dim)``;
* tokens (``hidden_states[-3]``): ``Linear(768, emb_dim)``;
* multi-token base (``hidden_states[-2]``): its own ``Linear(768, emb_dim)``.

This pooler reads any granularity (``source``), applies ``Linear(in, dim)``
(``dim`` defaults to the input width) and optionally ``LayerNorm(dim)``, and
returns a granularity of the **same shape**: a sequence keeps its mask (padded
positions are set to zero) and a pooled vector stays pooled. The input width
is injected by the builder. ORMA's ``× exp(temp)`` is left to the losses and
aligners that own the temperature.
"""

from __future__ import annotations

from typing import ClassVar

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
from torch import nn
from torch.nn import functional as F

__all__ = ["ProjectConfig", "ProjectPooler"]


class ProjectConfig(PoolerConfig):
    """Options of ``orma.project``."""

    source: str = Field("token", description="the granularity projected (sequence or pooled)")
    dim: int | None = Field(None, ge=1, description="output width (default: the input width)")
    layer_norm: bool = Field(False, description="LayerNorm after the Linear (ORMA: on the sentence only)")
    bias: bool = Field(True, description="give the Linear a bias")
    normalize: bool = Field(False, description="L2-normalise each output vector")


class ProjectPooler(Pooler):
    """Linear (+ LayerNorm) projection of any granularity, keeping its shape and mask."""

    Config: ClassVar[type[ComponentConfig]] = ProjectConfig
    source_shape: ClassVar[str] = "any"  # type: ignore[assignment]
    citation: ClassVar[str] = (
        "Min, Liu, Zhang, Song, Su, He and Bo. ORMA: Exploring Optimal Transport-Based Multi-Grained "
        "Alignments for Text-Molecule Retrieval. IEEE BIBM 2024, arXiv:2411.11875 (per-level projections)."
    )
    config: ProjectConfig

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """The source's shape, ``dim`` wide (the input width when ``dim`` is unset)."""
        spec = super().signature(config, encoder)  # checks that the source exists
        source = encoder.granularities[config.source]  # type: ignore[attr-defined]
        dim = config.dim if config.dim is not None else spec.dim  # type: ignore[attr-defined]
        return GranularitySpec(source.shape, dim)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        c = self.config
        if self.input_dim is None:
            raise ConfigError(
                f"orma.project needs the width of its source {c.source!r}, which the encoder does not declare",
                hint="project a granularity whose width the encoder's signature gives",
            )
        out_dim = c.dim if c.dim is not None else self.input_dim
        self.linear = nn.Linear(self.input_dim, out_dim, bias=c.bias)
        self.norm = nn.LayerNorm(out_dim) if c.layer_norm else None

    def forward(self, encoded: Encoded) -> Granularity:
        """Project ``source``; a sequence keeps its mask, with zeros at padded positions."""
        source = encoded[self.config.source]
        out = self.linear(source.hidden)
        if self.norm is not None:
            out = self.norm(out)
        if self.config.normalize:
            out = F.normalize(out, p=2, dim=-1)
        if out.dim() == 3:
            mask = source.full_mask()
            return Granularity(out.masked_fill(~mask.unsqueeze(-1), 0.0), mask)
        return Granularity(out)
