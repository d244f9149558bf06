"""``matryoshka2d.truncate``: the sentence embedding of hidden-state layer L, truncated to d dims.

2DMSE trains one model whose every (layer, dimension) prefix is a usable embedding.
This pooler serves such a prefix at encode time: it pools the per-layer state
``Encoded.layers[layer]`` (0 = embedding output, -1 = the last state the encoder
computed) with a parameter-free pooling (the modes of sentence-transformers'
``Pooling``), keeps the first ``dim`` coordinates and L2-normalises, as
sentence-transformers' ``MatryoshkaLoss.shrink`` does.

It has no weights, so the same trained model serves every (layer, dim): change
``layer`` / ``dim`` in the config and load the same ``model.safetensors``. With the
``matryoshka2d.early-exit`` encoder the layers above ``exit_layer`` are not even
computed (``layer: -1`` then reads the exit layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
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
from repmix.sdk.pooling import (
    first_real_token,
    last_real_token,
    masked_max,
    masked_mean,
)
from torch import Tensor

from repmix_matryoshka2d import CITATION

PoolingMode = Literal["mean", "cls", "max", "last-token"]
#: The SDK's masked pooling function of each mode.
_POOLING: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mean": masked_mean,
    "cls": first_real_token,
    "max": masked_max,
    "last-token": last_real_token,
}


def pool_tokens(hidden: Tensor, mask: Tensor, mode: PoolingMode) -> Tensor:
    """Pool [B, T, D] token states with a bool mask [B, T] as sentence-transformers' ``Pooling`` does.

    ``mean``: masked mean (count clamped at 1e-9); ``cls``: the first real position;
    ``max``: element-wise max over real positions; ``last-token``: the last real
    position (correct under left or right padding). Padded positions never
    contribute (``masked_fill``, so even non-finite values there cannot leak in).
    """
    return _POOLING[mode](hidden, mask)


def shrink(embeddings: Tensor, dim: int | None, normalize: bool = True) -> Tensor:
    """Keep the first ``dim`` coordinates (all when ``None``), then L2-normalise (sentence-transformers' ``shrink``)."""
    out = embeddings if dim is None else embeddings[..., :dim]
    return F.normalize(out, p=2, dim=-1) if normalize else out


def check_layer_index(layer: int, num_layers: int, what: str) -> int:
    """Normalise a hidden-state index (negative counts from the end); raise :class:`PipelineError` when out of range."""
    if not -num_layers <= layer < num_layers:
        raise PipelineError(
            f"{what} reads hidden-state layer {layer}, but the encoder exposes {num_layers} per-layer states "
            f"(embedding output + {num_layers - 1} layers)",
            found=layer,
            hint=f"use an index from {-num_layers} to {num_layers - 1} (0 = embedding output, -1 = last layer)",
        )
    return layer % num_layers


class TruncatePooler(Pooler):
    """Sentence embedding of hidden-state ``layer``, truncated to ``dim`` coordinates and L2-normalised."""

    citation: ClassVar[str] = CITATION
    needs_layers: ClassVar[bool] = True

    class Config(PoolerConfig):
        """Options of ``matryoshka2d.truncate``."""

        source: str = Field("token", description="the sequence granularity whose per-layer states are pooled")
        pooling: PoolingMode = Field("mean", description="mean, cls, max or last-token (sentence-transformers' Pooling modes)")
        layer: int = Field(-1, description="hidden-state index to pool: 0 = embedding output, -1 = the last one computed")
        dim: int | None = Field(None, ge=1, description="keep the first dim coordinates (null = all)")
        normalize: bool = Field(True, description="L2-normalise after truncating (as 2DMSE / sentence-transformers do)")

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """Checks the source, the per-layer states, the layer index and ``dim`` against the encoder."""
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config)
        if config.source != encoder.layers_of:
            raise PipelineError(
                f"matryoshka2d.truncate pools per-layer states, which the encoder gives for {encoder.layers_of!r}, "
                f"not for source {config.source!r}",
                found=config.source,
                allowed=[encoder.layers_of],
            )
        assert encoder.num_layers is not None
        check_layer_index(config.layer, encoder.num_layers, "matryoshka2d.truncate")
        if config.dim is not None and spec.dim is not None and config.dim > spec.dim:
            raise PipelineError(
                f"matryoshka2d.truncate keeps dim={config.dim} coordinates, but {config.source!r} has only {spec.dim}",
                found=config.dim,
                hint=f"use a dim of at most {spec.dim}",
            )
        return GranularitySpec("pooled", config.dim if config.dim is not None else spec.dim)

    def forward(self, encoded: Encoded) -> Granularity:
        """Pool ``layers[layer]`` with the source's mask, truncate, normalise."""
        if encoded.layers is None:
            raise InputError("matryoshka2d.truncate needs per-layer states, but the encoder returned none")
        index = check_layer_index(self.config.layer, len(encoded.layers), "matryoshka2d.truncate")
        mask = encoded[self.config.source].full_mask()
        pooled = pool_tokens(encoded.layers[index], mask, self.config.pooling)
        return Granularity(shrink(pooled, self.config.dim, self.config.normalize))
