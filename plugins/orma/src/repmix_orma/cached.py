"""``orma.frozen-cached``: a frozen encoder whose outputs are computed once per distinct input.

Wraps any encoder block (``encoder: {type: std.hf-transformer, ...}``, built by
repmix as a nested component). The wrapped encoder is frozen (no gradient,
always in eval mode: no dropout), so its output for a given tokenized input
never changes: the first time a row is seen it is encoded and its
granularities are kept in memory (trimmed to its real length); every later
batch holding that row is assembled from the cache. A frozen MiniLM text
tower then costs one forward pass per distinct text over the whole run
instead of one per step, which turns an hour of CPU training into minutes.

Why a wrapper encoder (and not an engine option): the tower stays a normal
tower (its poolers, aligners and losses do not change), the wrapper is
declared in YAML where the freezing happens, it works for every encoder that
returns granularities, and saved models keep the wrapped weights (they load
and encode the same without any cache). The cache key is the row's token ids
up to its attention mask (``input_ids``, plus ``token_type_ids`` when given),
so two texts that tokenize alike share an entry.

Outputs: every granularity of the wrapped encoder (or those listed in
``keep``); sequences come back padded with zeros to the batch's width with the
batch's mask, pooled ones as they are. Per-layer states are not cached: the
wrapper exposes none (``num_layers: None``), so a pooler that needs them is
rejected by ``repmix check``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    InputError,
    PipelineError,
    Runtime,
    load_component_class,
)
from torch import Tensor

__all__ = ["FrozenCachedConfig", "FrozenCachedEncoder"]

_RESERVED = ("type", "trainable", "lr")


class FrozenCachedConfig(ComponentConfig):
    """Options of ``orma.frozen-cached``."""

    encoder: dict[str, Any] = Field(description="the wrapped encoder block ({type: ..., ...}); it is frozen")
    keep: list[str] | None = Field(None, description="granularities to cache and provide (default: all)")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="storage type of cached vectors (float16 halves the memory; outputs are float32)"
    )
    max_items: int = Field(1_000_000, ge=1, description="distinct inputs kept; beyond it the oldest are dropped")
    chunk: int = Field(32, ge=1, description="rows per forward pass of the wrapped encoder (length-sorted)")


def _inner_signature(config: FrozenCachedConfig) -> EncoderSignature:
    block = dict(config.encoder)
    type_name = block.get("type")
    if not isinstance(type_name, str):
        raise ConfigError("orma.frozen-cached: 'encoder' must be an encoder block with a 'type'", path="encoder")
    cls = load_component_class("encoder", type_name)
    params = {k: v for k, v in block.items() if k not in _RESERVED}
    return cls.signature(cls.Config.model_validate(params))


class FrozenCachedEncoder(Encoder):
    """A frozen encoder with a per-input memory cache of its granularities."""

    Config: ClassVar[type[ComponentConfig]] = FrozenCachedConfig
    citation: ClassVar[str] = "repmix-orma: frozen, cached encoder outputs (no paper; a training convenience)."
    config: FrozenCachedConfig

    @classmethod
    def nested_components(cls, config: ComponentConfig) -> dict[str, tuple[str, dict[str, Any]]]:
        """The wrapped encoder, planned and built by repmix."""
        assert isinstance(config, FrozenCachedConfig)
        return {"encoder": ("encoder", dict(config.encoder))}

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """The wrapped encoder's granularities (those in ``keep``), without per-layer states."""
        assert isinstance(config, FrozenCachedConfig)
        inner = _inner_signature(config)
        grans = dict(inner.granularities)
        if config.keep is not None:
            missing = [g for g in config.keep if g not in grans]
            if missing:
                raise PipelineError(
                    f"orma.frozen-cached keeps {missing[0]!r}, which the wrapped encoder does not provide",
                    found=missing[0],
                    allowed=sorted(grans),
                )
            grans = {g: grans[g] for g in config.keep}
        layers_of = inner.layers_of if inner.layers_of in grans else next(iter(grans))
        return EncoderSignature(grans, num_layers=None, layers_of=layers_of)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        inner = runtime.nested.get("encoder")
        if not isinstance(inner, Encoder):
            raise ConfigError("orma.frozen-cached: the wrapped block did not build an encoder", path="encoder")
        self.encoder = inner
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.encoder.eval()
        self._grans = list(self.signature(self.config).granularities)
        self._dtype = getattr(torch, self.config.dtype)
        self._cache: dict[bytes, dict[str, Tensor]] = {}
        #: How many rows were encoded (misses) and served from the cache (hits).
        self.misses = 0
        self.hits = 0

    def train(self, mode: bool = True) -> FrozenCachedEncoder:
        """Train mode for the wrapper only: the wrapped encoder always stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def clear_cache(self) -> None:
        """Forget every cached output."""
        self._cache.clear()

    @staticmethod
    def _keys(batch: Mapping[str, Tensor]) -> tuple[list[bytes], Tensor]:
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        types = batch.get("token_type_ids")
        keys = []
        for i in range(ids.shape[0]):
            row = ids[i][mask[i]].to(torch.int64).cpu().numpy().tobytes()
            if types is not None:
                row += b"|" + types[i][mask[i]].to(torch.int64).cpu().numpy().tobytes()
            keys.append(row)
        return keys, mask

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode the rows not seen yet with the frozen encoder; assemble the batch from the cache."""
        if not isinstance(batch, Mapping) or "input_ids" not in batch:
            raise InputError("orma.frozen-cached expects a token batch with input_ids (a Hugging Face tokenizer's)")
        keys, mask = self._keys(batch)
        first_of: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._cache:
                first_of.setdefault(k, i)  # a text twice in one batch is encoded once
        missing = list(first_of.values())
        self.hits += len(keys) - len(missing)
        if missing:
            self._fill(batch, missing, keys, mask)
        device = mask.device
        width = mask.shape[1]
        out: dict[str, Granularity] = {}
        for g in self._grans:
            rows = [self._cache[k][g] for k in keys]
            if rows[0].dim() == 1:  # pooled
                out[g] = Granularity(torch.stack(rows).to(device=device, dtype=torch.float32))
                continue
            hidden = torch.zeros(len(rows), width, rows[0].shape[-1], dtype=torch.float32, device=device)
            for i, r in enumerate(rows):
                positions = mask[i].nonzero().squeeze(1)
                hidden[i, positions] = r.to(device=device, dtype=torch.float32)
            out[g] = Granularity(hidden, mask.clone())
        return Encoded(out)

    @torch.no_grad()
    def _fill(self, batch: Mapping[str, Tensor], rows: list[int], keys: list[bytes], mask: Tensor) -> None:
        """Encode the ``rows`` of ``batch`` in length-sorted chunks trimmed to their own longest row
        (a random training batch is padded to its longest text; trimming saves most of that work)."""
        self.encoder.eval()
        lengths = mask.sum(dim=1)
        positions = torch.arange(mask.shape[1], device=mask.device)
        right_padded = bool(torch.equal(mask, positions.view(1, -1) < lengths.view(-1, 1)))
        rows = sorted(rows, key=lambda i: -int(lengths[i]))
        for start in range(0, len(rows), self.config.chunk):
            chunk = rows[start : start + self.config.chunk]
            width = max(1, int(lengths[chunk[0]])) if right_padded else mask.shape[1]
            index = torch.tensor(chunk, device=mask.device)
            sub = {
                k: (v.index_select(0, index)[:, :width] if isinstance(v, Tensor) and v.dim() == 2 else v)
                for k, v in batch.items()
            }
            encoded = self.encoder(sub, output_layers=False)
            self.misses += len(chunk)
            for j, i in enumerate(chunk):
                entry: dict[str, Tensor] = {}
                for g in self._grans:
                    gran = encoded[g]
                    h = gran.hidden[j]
                    if h.dim() == 2:
                        m = gran.mask[j].bool() if gran.mask is not None else mask[i][:width]
                        h = h[m]
                    entry[g] = h.detach().to(device="cpu", dtype=self._dtype).clone()
                if len(self._cache) >= self.config.max_items:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[keys[i]] = entry
