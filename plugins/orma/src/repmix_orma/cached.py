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

Trainable top layers (``train_top_layers: k``, Hugging Face BERT-family
encoders such as ``std.hf-transformer``): the cache holds the hidden state
that enters the top ``k`` transformer layers, and those ``k`` layers run at
every step and train; granularities read from the frozen layers come from the
cache. Fine-tuning the top of the text encoder costs ``k/L`` of its
forward-backward pass (on ChEBI-20 the top two of MiniLM's six layers lift
text->molecule Hits@1 by about nine points over a frozen tower; see
docs/results/orma.md), and the outputs equal the unwrapped encoder's.

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
    chunk: int = Field(
        32, ge=1, description="rows per forward pass of the wrapped encoder and of the trainable top layers "
        "(length-sorted, each chunk trimmed to its longest row)",
    )
    train_top_layers: int = Field(
        0, ge=0, le=64, description="run and train the top k transformer layers at every step (BERT-family "
        "Hugging Face encoders); the cache holds what enters them. 0: everything frozen",
    )

_TOP_INPUT = "__top_input__"


def _layer_stack(encoder: Any) -> Any:
    """The list of transformer layers of a Hugging Face BERT-family model inside ``encoder``, or None."""
    model = getattr(encoder, "model", None)
    stack = getattr(getattr(model, "encoder", None), "layer", None)
    return stack if isinstance(stack, torch.nn.ModuleList) else None


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
        self._top: list[torch.nn.Module] = []
        self._live: dict[str, int] = {}  # granularity -> hidden-state index computed at every step
        if self.config.train_top_layers:
            self._init_top_layers(self.config.train_top_layers)
        self._cache: dict[bytes, dict[str, Tensor]] = {}
        #: How many rows were encoded (misses) and served from the cache (hits).
        self.misses = 0
        self.hits = 0

    def _init_top_layers(self, k: int) -> None:
        stack = _layer_stack(self.encoder)
        layers = getattr(getattr(self.encoder, "config", None), "granularities", None)
        if stack is None or not isinstance(layers, dict):
            raise ConfigError(
                "orma.frozen-cached: train_top_layers needs a Hugging Face BERT-family encoder "
                "(e.g. std.hf-transformer) with a 'granularities' map of hidden-state layers",
                path="train_top_layers",
            )
        n = len(stack)
        if k > n:
            raise ConfigError(f"orma.frozen-cached: train_top_layers={k}, but the model has {n} layers",
                              path="train_top_layers", found=k)
        self._top_from = n - k  # hidden state index entering the top k layers
        self._top = list(stack[n - k :])  # owned (and saved) by the wrapped encoder
        for layer in self._top:
            layer.requires_grad_(True)
        self._live = {g: i % (n + 1) for g, i in layers.items() if g in self._grans and i % (n + 1) > self._top_from}
        self._grans = [g for g in self._grans if g not in self._live]

    def train(self, mode: bool = True) -> FrozenCachedEncoder:
        """Train mode for the wrapper and its trainable top layers; the frozen encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        for layer in self._top:
            layer.train(mode)
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
        if self._top:
            out.update(self._run_top(keys, mask))
        return Encoded(out)

    def _run_top(self, keys: list[bytes], mask: Tensor) -> dict[str, Granularity]:
        """The trainable top layers over the cached hidden state that enters them.

        Rows run in length-sorted chunks of ``chunk``, each trimmed to its own
        longest row: a random training batch is padded to its longest text
        (on ChEBI-20 a batch of 128 holds 2.2 times its real tokens), and BERT
        layers see positions only through their (cached) input, so every real
        position gets the output it gets in the padded batch. Padding
        positions come back as zeros.
        """
        device = mask.device
        rows = [self._cache[k][_TOP_INPUT] for k in keys]
        lengths = [int(r.shape[0]) for r in rows]
        order = sorted(range(len(rows)), key=lambda i: -lengths[i])
        dim = rows[0].shape[-1]
        pieces: dict[str, list[Tensor]] = {g: [] for g in self._live}
        for start in range(0, len(order), self.config.chunk):
            chunk = order[start : start + self.config.chunk]
            width = max(1, lengths[chunk[0]])
            x = torch.zeros(len(chunk), width, dim, dtype=torch.float32, device=device)
            real = torch.zeros(len(chunk), width, dtype=torch.bool, device=device)
            for j, i in enumerate(chunk):
                x[j, : lengths[i]] = rows[i].to(device=device, dtype=torch.float32)
                real[j, : lengths[i]] = True
            additive = (1.0 - real[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for j, layer in enumerate(self._top):
                y = layer(x, attention_mask=additive)
                x = y[0] if isinstance(y, tuple) else y
                for g, index in self._live.items():
                    if index == self._top_from + j + 1:
                        pieces[g].append(x[real])  # real tokens, row after row of the chunk
        # where those tokens sit in the batch: row i's real positions, rows in chunk order
        batch_rows = torch.cat([torch.full((lengths[i],), i, dtype=torch.long) for i in order]).to(device)
        positions = torch.cat([mask[i].nonzero().squeeze(1).to(torch.long) for i in order])
        out: dict[str, Granularity] = {}
        for g, parts in pieces.items():
            hidden = torch.zeros(len(rows), mask.shape[1], dim, dtype=torch.float32, device=device)
            out[g] = Granularity(hidden.index_put((batch_rows, positions), torch.cat(parts)), mask.clone())
        return out

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
            encoded = self.encoder(sub, output_layers=bool(self._top))
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
                if self._top:
                    layers = encoded.layers
                    if layers is None:
                        raise PipelineError("orma.frozen-cached: the wrapped encoder returned no hidden states")
                    h = layers[self._top_from][j]
                    entry[_TOP_INPUT] = h[mask[i][:width].bool()].detach().to(device="cpu", dtype=self._dtype).clone()
                if len(self._cache) >= self.config.max_items:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[keys[i]] = entry
