"""Multi-scale CNN: parallel Conv1d of several widths over a token sequence, masked max over time, concatenated.

For token vectors x_1..x_n [n, D] (padding zeroed) and each width k of ``kernel_sizes``::

    h^k_s = act(W^k · [x_s; ...; x_{s+k−1}] + b^k)     for the windows s = 1 .. max(n − k + 1, 1)
    z^k   = max_s h^k_s                               (element-wise, F values)
    z     = [z^{k_1}; ...; z^{k_m}]                   [|K|·F]

An item shorter than k gets one window, zero-padded (as Kim-style CNNs pad short
inputs); windows that would reach past an item's end never count, so padding
does not change the output.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
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
from repmix.sdk.embedding import token_embedding
from torch import Tensor, nn

CITATION = (
    "Wang (2020). Semantic Representation and Inference for NLP. PhD thesis, University of Copenhagen, "
    "arXiv:2106.08117 (multi-scale CNN inference model for MultiFC claim verification); "
    "Kim (2014). Convolutional Neural Networks for Sentence Classification. EMNLP 2014."
)
_ACT = {"relu": F.relu, "tanh": torch.tanh, "identity": lambda x: x}


def _check_kernels(value: list[int]) -> list[int]:
    if not value:
        raise ValueError("kernel_sizes must list at least one width, e.g. [2, 3, 4]")
    if any(k < 1 for k in value):
        raise ValueError(f"kernel widths must be >= 1, got {value}")
    if len(set(value)) != len(value):
        raise ValueError(f"kernel_sizes repeats a width: {value}")
    return value


class MultiScaleConv(nn.Module):
    """The multi-scale convolution + masked max over time: [B, T, D] + mask -> [B, |K|·F]."""

    def __init__(self, dim: int, kernel_sizes: list[int], filters: int, activation: str = "relu") -> None:
        super().__init__()
        self.kernel_sizes = list(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, k) for k in self.kernel_sizes)
        self.act = _ACT[activation]

    def scale(self, index: int, x: Tensor, mask: Tensor) -> Tensor:
        """z^k [B, F] for the ``index``-th width (x already zero at padding)."""
        k = self.kernel_sizes[index]
        h = x.transpose(1, 2)  # [B, D, T]
        if h.shape[-1] < k:
            h = F.pad(h, (0, k - h.shape[-1]))
        out = self.act(self.convs[index](h))  # [B, F, T' = max(T, k) − k + 1]
        lengths = mask.sum(dim=1)
        last_start = (lengths - k).clamp(min=0)  # windows s = 0 .. max(n − k, 0)
        valid = torch.arange(out.shape[-1], device=x.device).unsqueeze(0) <= last_start.unsqueeze(1)
        return out.masked_fill(~valid.unsqueeze(1), torch.finfo(out.dtype).min).max(dim=-1).values

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        if not bool((mask.to(torch.int8).diff(dim=1) <= 0).all()):
            raise InputError("the multi-scale CNN needs right-padded sequences (real positions first)")
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        return torch.cat([self.scale(i, x, mask) for i in range(len(self.kernel_sizes))], dim=-1)


class MultiScaleCNNEncoder(Encoder):
    """Word embeddings, then the multi-scale CNN: ``token`` = the embeddings [B, T, E], ``sentence`` [B, |K|·F].

    The vocabulary size and padding id come from the tower's tokenizer (e.g.
    std's ``hf-tokenizer``). ``pooled`` names the CNN output granularity.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``cnn``."""

        embed_dim: int = Field(100, ge=1, description="word embedding width E")
        kernel_sizes: list[int] = Field(default_factory=lambda: [2, 3, 4], description="convolution widths K")
        filters: int = Field(100, ge=1, description="F: filters per width (output width |K|·F)")
        activation: Literal["relu", "tanh", "identity"] = Field("relu", description="non-linearity after each conv")
        pooled: str = Field("sentence", description="name of the pooled [B, |K|·F] granularity")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the word embeddings")

        _check_k = field_validator("kernel_sizes")(_check_kernels)

        @field_validator("pooled")
        @classmethod
        def _check_pooled(cls, value: str) -> str:
            if not value or value == "token":
                raise ValueError("pooled must be a non-empty name other than 'token'")
            return value

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.embeddings = token_embedding(runtime.tokenizer, config.embed_dim, "cnn")
        self.drop = nn.Dropout(config.dropout)
        self.cnn = MultiScaleConv(config.embed_dim, config.kernel_sizes, config.filters, config.activation)

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` (sequence, ``embed_dim``) and ``pooled`` (pooled, |K|·F)."""
        return EncoderSignature(
            {
                "token": GranularitySpec("sequence", config.embed_dim),
                config.pooled: GranularitySpec("pooled", len(config.kernel_sizes) * config.filters),
            },
            num_layers=None,
        )

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode ``{"input_ids", "attention_mask"}``."""
        if not isinstance(batch, dict) or "input_ids" not in batch:
            raise InputError("cnn expects a tokenizer batch with input_ids (e.g. from std.hf-tokenizer)")
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        e = self.drop(self.embeddings(ids)).masked_fill(~mask.unsqueeze(-1), 0.0)
        return Encoded({"token": Granularity(e, mask), self.config.pooled: Granularity(self.cnn(e, mask))})


class MultiScaleCNNPooler(Pooler):
    """The multi-scale CNN over any encoder's token states: ``source`` [B, T, D] -> [B, |K|·F]."""

    citation: ClassVar[str] = CITATION

    class Config(PoolerConfig):
        """Options of ``cnn-max`` (plus ``source`` and ``normalize``)."""

        kernel_sizes: list[int] = Field(default_factory=lambda: [2, 3, 4], description="convolution widths K")
        filters: int = Field(100, ge=1, description="F: filters per width (output width |K|·F)")
        activation: Literal["relu", "tanh", "identity"] = Field("relu", description="non-linearity after each conv")

        _check_k = field_validator("kernel_sizes")(_check_kernels)

    config: Config

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> GranularitySpec:
        """A pooled granularity of width |K|·F; the source must be a sequence of known width."""
        spec = super().signature(config, encoder)
        if spec.dim is None:
            raise PipelineError(f"cnn-max needs the width of {config.source!r}, which the encoder does not declare")
        return GranularitySpec("pooled", len(config.kernel_sizes) * config.filters)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if not isinstance(self.input_dim, int):
            raise ConfigError("cnn-max needs the input width of its source granularity (injected by the builder)")
        self.cnn = MultiScaleConv(self.input_dim, config.kernel_sizes, config.filters, config.activation)

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        z = self.cnn(g.hidden, g.full_mask())
        return Granularity(F.normalize(z, dim=-1) if self.config.normalize else z)
