"""``orma.mlp``: a multi-layer perceptron, as an encoder over feature vectors and as a pooler.

* encoder ``orma.mlp``: reads ``{"features": [B, F]}`` from a feature tokenizer
  (``orma.morgan-fingerprint``) and provides one pooled granularity
  (``output``, default ``molecule``). The input width ``F`` comes from the
  tokenizer's ``feature_dim`` at build time.
* pooler ``orma.mlp``: reads a pooled granularity (``source``) and returns
  one (e.g. a head over a frozen sentence embedding).

Layout: ``Linear(F, h1) -> act -> dropout -> ... -> Linear(h_k, out)``; the
last layer has no activation (Text2Mol's MLP1; the fingerprint baseline of
issue 10: 2048 -> 1024 -> 256 and 384 -> 512 -> 256, GELU, dropout 0.2).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    PipelineError,
    Pooler,
    PoolerConfig,
    Runtime,
)
from torch import Tensor, nn

__all__ = ["MLPEncoder", "MLPEncoderConfig", "MLPPooler", "MLPPoolerConfig", "build_mlp"]

_CITATION = (
    "Edwards, Zhai and Ji. Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries. "
    "EMNLP 2021 (MLP1: Morgan fingerprint -> MLP)."
)
_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def build_mlp(in_dim: int, hidden: list[int], out_dim: int, activation: str, dropout: float) -> nn.Sequential:
    """``Linear -> act -> dropout`` per hidden width, then a last ``Linear`` to ``out_dim``."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class _MLPOptions(ComponentConfig):
    hidden: list[int] = Field(default_factory=lambda: [1024], description="hidden widths, in order")
    dim: int = Field(256, ge=1, description="output width")
    activation: Literal["gelu", "relu", "tanh"] = Field("gelu", description="activation after each hidden layer")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout after each hidden activation")
    normalize: bool = Field(False, description="L2-normalise the output")


class MLPEncoderConfig(_MLPOptions):
    """Options of the ``orma.mlp`` encoder."""

    output: str = Field("molecule", min_length=1, description="name of the pooled granularity provided")


class MLPEncoder(Encoder):
    """Feature vectors (``{"features": [B, F]}``) -> one pooled granularity through an MLP."""

    Config: ClassVar[type[ComponentConfig]] = MLPEncoderConfig
    citation: ClassVar[str] = _CITATION
    config: MLPEncoderConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        in_dim = getattr(runtime.tokenizer, "feature_dim", None)
        if not isinstance(in_dim, int) or in_dim < 1:
            raise ConfigError(
                "orma.mlp (encoder) reads feature vectors, but the tower's tokenizer declares no feature_dim",
                hint="use a feature tokenizer such as orma.morgan-fingerprint",
            )
        c = self.config
        self.in_dim = in_dim
        self.net = build_mlp(in_dim, list(c.hidden), c.dim, c.activation, c.dropout)

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """One pooled granularity of width ``dim``."""
        assert isinstance(config, MLPEncoderConfig)
        return EncoderSignature({config.output: GranularitySpec("pooled", config.dim)}, num_layers=None)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Run the MLP over ``batch["features"]``."""
        x = batch["features"] if isinstance(batch, dict) else batch
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"orma.mlp expects features of shape [B, {self.in_dim}], got {shape}")
        h = self.net(x.to(self.net[0].weight.dtype))
        if self.config.normalize:
            h = nn.functional.normalize(h, dim=-1)
        return Encoded({self.config.output: Granularity(h)})


class MLPPoolerConfig(PoolerConfig, _MLPOptions):
    """Options of the ``orma.mlp`` pooler."""

    source: str = Field("sentence", description="the pooled granularity read")


class MLPPooler(Pooler):
    """A pooled granularity -> another pooled granularity through an MLP (a projection head)."""

    Config: ClassVar[type[ComponentConfig]] = MLPPoolerConfig
    citation: ClassVar[str] = _CITATION
    source_shape: ClassVar[Literal["sequence", "pooled", "any"]] = "pooled"
    config: MLPPoolerConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if self.input_dim is None:
            raise PipelineError("orma.mlp (pooler) needs the width of its source, which the builder did not give")
        c = self.config
        self.net = build_mlp(int(self.input_dim), list(c.hidden), c.dim, c.activation, c.dropout)

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """A pooled granularity of width ``dim``."""
        super().signature(config, encoder)
        assert isinstance(config, MLPPoolerConfig)
        return GranularitySpec("pooled", config.dim)

    def forward(self, encoded: Encoded) -> Granularity:
        """Run the MLP over the source vectors."""
        x = encoded[self.config.source].hidden
        h = self.net(x.to(self.net[0].weight.dtype))
        if self.config.normalize:
            h = torch.nn.functional.normalize(h, dim=-1)
        return Granularity(h)
