"""Poolers of "Pooling and Attention" (Tang & Yang, 2024).

``mltp.multi-layer`` (Multi-Layers Trainable Pooling)::

    H  = [h^(l)_last real token]_{l in layers}            (B, N, d)   l = 1..L by default
    H' = H + P[0..N-1]                                    P: Embedding(N, d), the layer positions
    X1 = Attn(Q = W_q LN(X0), K, V = W_kv LN(H')) + X0    X0: r trainable latents (r, d)
    X2 = W_2 GEGLU(W_1 LN(X1)) + X1                       GEGLU(x, g) = x * gelu(g), width mult * d
    e  = L2normalize(mean_r X2)

as the official ``PerceiverResampler`` (pooling_layers/MultiLayersTrainablePooling.py): multi-head
scaled dot-product attention without bias, queries from the latents, keys and values from the
layer states; latents and layer positions initialised N(0, 1). The official code takes position
-1 of every layer, which is the last token only under left padding; here the last *real* token
is read through the mask, so the output does not depend on the padding side.

``mltp.last-layer`` runs the same resampler (without layer positions) over all token states of the
last layer; unlike the official code it masks padded tokens out of the attention (the official
code attends to padding), so padding never changes the output.

``mltp.eos`` / ``mltp.token-mean`` are the baselines the paper compares with; they equal
sentence-transformers' ``Pooling(pooling_mode="lasttoken" | "mean")``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    PipelineError,
    Pooler,
    PoolerConfig,
    Runtime,
)
from repmix.sdk.pooling import first_real_token, last_real_token, masked_mean
from torch import Tensor, nn

from repmix_mltp import CITATION


class GEGLU(nn.Module):
    """``x * gelu(gate)`` over the two halves of the last dimension."""

    def forward(self, x: Tensor) -> Tensor:
        """Split in value and gate halves and gate."""
        value, gate = x.chunk(2, dim=-1)
        return value * F.gelu(gate)


class LatentResampler(nn.Module):
    """r trainable latents cross-attend to a set of states, then a GEGLU MLP; mean over latents.

    Pre-LayerNorm residual blocks as the official ``PerceiverResampler`` (one cross-attention
    block, one feed-forward block). ``positions`` adds a learned position embedding to the
    attended states (the layer positions of multi-layer pooling).
    """

    def __init__(self, dim: int, latents: int, heads: int, dim_head: int, ff_mult: int, positions: int | None) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.latents = nn.Parameter(torch.randn(latents, dim))
        self.positions = nn.Embedding(positions, dim) if positions else None
        self.norm_context = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim * ff_mult * 2), GEGLU(), nn.Linear(dim * ff_mult, dim))

    def forward(self, states: Tensor, mask: Tensor | None = None) -> Tensor:
        """[B, M, D] states (+ bool [B, M] mask) -> [B, D] (mean of the r latents after the two blocks)."""
        b, m, _ = states.shape
        if self.positions is not None:
            states = states + self.positions(torch.arange(m, device=states.device))
        x = self.latents.unsqueeze(0).expand(b, -1, -1)
        q = self.to_q(self.norm_latents(x))
        k, v = self.to_kv(self.norm_context(states)).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = self.to_out(out.transpose(1, 2).reshape(b, -1, self.heads * self.dim_head)) + x
        x = self.ff(self.norm_ff(x)) + x
        return x.mean(dim=1)


class _ResamplerConfig(PoolerConfig):
    """Options shared by the trainable poolers (defaults: the paper's design shrunk for CPU)."""

    source: str = Field("token", description="the sequence granularity (its per-layer states for multi-layer)")
    normalize: bool = Field(True, description="L2-normalise the output (the official code does)")
    latents: int = Field(16, ge=1, description="number r of trainable latents (official: 768)")
    heads: int = Field(4, ge=1, description="attention heads (official: 32)")
    dim_head: int = Field(32, ge=1, description="width of each head (official: 2048)")
    ff_mult: int = Field(4, ge=1, description="GEGLU feed-forward width multiplier (official: 4)")


def _resampler_params(dim: int, c: _ResamplerConfig, positions: int | None) -> int:
    """Number of parameters of a :class:`LatentResampler` (the formula the tests check)."""
    inner = c.heads * c.dim_head
    ln = 2 * dim
    return (
        c.latents * dim
        + (positions or 0) * dim
        + 3 * ln
        + dim * inner * 3
        + inner * dim
        + (dim * dim * c.ff_mult * 2 + dim * c.ff_mult * 2)
        + (dim * c.ff_mult * dim + dim)
    )


class MultiLayerTrainablePooler(Pooler):
    """Multi-Layers Trainable Pooling: last-token states of every layer + layer positions -> latent attention -> MLP -> mean -> L2."""

    citation: ClassVar[str] = CITATION
    needs_layers: ClassVar[bool] = True

    class Config(_ResamplerConfig):
        """Options of ``mltp.multi-layer``."""

        layers: Literal["transformer", "all"] | list[int] = Field(
            "transformer",
            description="hidden states pooled: 'transformer' = 1..L (the official code, no embedding output), "
            "'all' = 0..L, or a list of indices",
        )
        token: Literal["last", "first"] = Field(
            "last", description="which position of each layer: the last real token (EOS, the paper) or the first"
        )

        @field_validator("layers")
        @classmethod
        def _check_layers(cls, value: object) -> object:
            if isinstance(value, list) and (not value or len(set(value)) != len(value)):
                raise ValueError("layers must list distinct hidden-state indices")
            return value

    config: Config

    @staticmethod
    def layer_indices(config: Config, num_states: int) -> list[int]:
        """The hidden-state indices pooled for an encoder with ``num_states`` states (embedding output included)."""
        if config.layers == "transformer":
            return list(range(1, num_states))
        if config.layers == "all":
            return list(range(num_states))
        assert isinstance(config.layers, list)
        bad = [i for i in config.layers if not -num_states <= i < num_states]
        if bad:
            raise PipelineError(
                f"mltp.multi-layer pools hidden states {bad}, but the encoder exposes {num_states} "
                f"(0 = embedding output .. {num_states - 1})",
                found=bad,
            )
        return [i % num_states for i in config.layers]

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """Needs per-layer states of the source; the output keeps the source's width."""
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config) and encoder.num_layers is not None
        if config.source != encoder.layers_of:
            raise PipelineError(
                f"mltp.multi-layer reads per-layer states, which the encoder gives for {encoder.layers_of!r}, "
                f"not for source {config.source!r}",
                found=config.source,
                allowed=[encoder.layers_of],
            )
        if not cls.layer_indices(config, encoder.num_layers):
            raise PipelineError("mltp.multi-layer has no layer to pool (the encoder exposes only its embedding output)")
        return spec

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if self.input_dim is None or runtime.encoder is None or not runtime.encoder.num_layers:
            raise ConfigError("mltp.multi-layer needs the input width and the encoder's layer count (injected by the builder)")
        self.num_states = runtime.encoder.num_layers
        self.indices = self.layer_indices(self.config, self.num_states)
        c = self.config
        self.resampler = LatentResampler(self.input_dim, c.latents, c.heads, c.dim_head, c.ff_mult, len(self.indices))

    def layer_states(self, encoded: Encoded) -> Tensor:
        """[B, N, D]: the chosen token of every pooled layer, in layer order."""
        if encoded.layers is None:
            raise InputError("mltp.multi-layer needs per-layer states, but the encoder returned none")
        mask = encoded[self.config.source].full_mask()
        pick = last_real_token if self.config.token == "last" else first_real_token
        # The pooled layers count from the bottom; an encoder cut short (e.g. re-pooled at a shallower
        # layer by matryoshka2d) gives fewer states, and the layers it lacks are simply absent. A
        # network cut below every pooled layer (only the embedding output left) pools its deepest state.
        available = [i for i in self.indices if i < len(encoded.layers)] or [len(encoded.layers) - 1]
        return torch.stack([pick(encoded.layers[i], mask) for i in available], dim=1)

    def forward(self, encoded: Encoded) -> Granularity:
        """Pool the per-layer last-token states with the latent resampler."""
        out = self.resampler(self.layer_states(encoded))
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)

    def expected_parameters(self) -> int:
        """Parameter count from the configuration (for the tests)."""
        assert self.input_dim is not None
        return _resampler_params(self.input_dim, self.config, len(self.indices))


class LastLayerTrainablePooler(Pooler):
    """The latent resampler over every (real) token state of the last layer."""

    citation: ClassVar[str] = CITATION

    class Config(_ResamplerConfig):
        """Options of ``mltp.last-layer``."""

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if self.input_dim is None:
            raise ConfigError("mltp.last-layer needs the input width (injected by the builder)")
        c = self.config
        self.resampler = LatentResampler(self.input_dim, c.latents, c.heads, c.dim_head, c.ff_mult, None)

    def forward(self, encoded: Encoded) -> Granularity:
        """Latents attend to the real tokens only."""
        g = encoded[self.config.source]
        mask = g.full_mask()
        hidden = g.hidden.masked_fill(~mask.unsqueeze(-1), 0)  # padded garbage cannot become NaN in the LayerNorm
        out = self.resampler(hidden, mask)
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)


class _SimpleConfig(PoolerConfig):
    source: str = Field("token", description="the sequence granularity to pool")
    normalize: bool = Field(False, description="L2-normalise the pooled vector")


class EosPooler(Pooler):
    """EOS-last pooling: the last real token (sentence-transformers ``Pooling(pooling_mode='lasttoken')``)."""

    citation: ClassVar[str] = CITATION

    class Config(_SimpleConfig):
        """Options of ``mltp.eos``."""

    config: Config

    def forward(self, encoded: Encoded) -> Granularity:
        """The last position whose mask is true (any padding side)."""
        g = encoded[self.config.source]
        out = last_real_token(g.hidden, g.full_mask())
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)


class MeanPooler(Pooler):
    """Mean pooling over real tokens (sentence-transformers ``Pooling(pooling_mode='mean')``)."""

    citation: ClassVar[str] = CITATION

    class Config(_SimpleConfig):
        """Options of ``mltp.token-mean``."""

    config: Config

    def forward(self, encoded: Encoded) -> Granularity:
        """Masked mean."""
        g = encoded[self.config.source]
        out = masked_mean(g.hidden, g.full_mask())
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)


__all__ = [
    "GEGLU",
    "EosPooler",
    "LastLayerTrainablePooler",
    "LatentResampler",
    "MeanPooler",
    "MultiLayerTrainablePooler",
]
