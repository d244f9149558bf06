"""The M2-BERT encoder: embeddings, then layers of Monarch Mixer sequence mixing + Monarch GLU MLP."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
)
from repmix.sdk.embedding import token_embedding
from torch import nn

from .mixer import MonarchGLU, MonarchMixerSequenceMixing


class M2Layer(nn.Module):
    """One M2-BERT layer (official ``BertLayer`` with ``monarch_mixer_sequence_mixing``): mixer, then GLU MLP.

    As in the official code, the mixer's output feeds the MLP without a residual
    around the mixer; the MLP adds its residual and a post-LayerNorm.
    """

    def __init__(self, config: M2BertEncoder.Config) -> None:
        super().__init__()
        self.mixer = MonarchMixerSequenceMixing(
            config.dim,
            config.max_length,
            order=config.filter_order,
            bidirectional=config.bidirectional,
            residual_long_conv=config.residual_long_conv,
            emb_dim=config.filter_emb_dim,
            w=config.filter_w,
        )
        self.mlp = MonarchGLU(config.dim, config.ffn or 4 * config.dim, config.nblocks, config.dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.mixer(h, mask)).masked_fill(~mask.unsqueeze(-1), 0.0)


class M2BertEncoder(Encoder):
    """An attention-free, MLP-free BERT (Monarch Mixer): cost O(T log T) in the sequence length.

    Word + learned position embeddings (LayerNorm, dropout), then ``layers``
    M2 layers. Provides ``token`` [B, T, dim] with the tokenizer's mask and,
    with ``output_layers``, ``layers + 1`` per-layer states (index 0 = the
    embedding output). The vocabulary size and padding id come from the tower's
    tokenizer (e.g. std's ``hf-tokenizer``). Randomly initialised: the M2-BERT
    pretraining (and its checkpoints) is left out.
    """

    citation: ClassVar[str] = (
        "Saad-Falcon, Fu, Arora, Guha and Ré (2024). Benchmarking and Building Long-Context Retrieval Models "
        "with LoCo and M2-BERT. ICML 2024; Fu et al. (2023). Monarch Mixer: A Simple Sub-Quadratic GEMM-Based "
        "Architecture. NeurIPS 2023. Official code: github.com/HazyResearch/m2."
    )

    class Config(ComponentConfig):
        """Options of ``m2-bert``."""

        dim: int = Field(64, ge=1, description="hidden width D")
        layers: int = Field(2, ge=1, description="number of M2 layers")
        ffn: int | None = Field(None, ge=1, description="GLU inner width (default 4 * dim)")
        nblocks: int = Field(4, ge=1, description="blocks of the Monarch (block-diagonal) MLP matrices; 1 = dense")
        filter_order: int = Field(16, ge=1, description="width of the implicit filter MLP (Hyena 'order')")
        filter_emb_dim: int = Field(3, ge=3, description="positional features of the filter MLP (odd, >= 3)")
        filter_w: float = Field(10.0, gt=0, description="initial frequency of the filter's sine activations")
        bidirectional: bool = Field(True, description="non-causal long convolution (a second, reversed filter)")
        residual_long_conv: bool = Field(False, description="add a second long convolution of the mixer's input")
        max_length: int = Field(512, ge=2, description="longest input: learned positions and the filters' l_max")
        dropout: float = Field(0.1, ge=0, lt=1, description="dropout on embeddings and in the MLP")

        @model_validator(mode="after")
        def _check(self) -> M2BertEncoder.Config:
            ffn = self.ffn or 4 * self.dim
            if self.dim % self.nblocks or ffn % self.nblocks:
                raise ValueError(f"dim ({self.dim}) and ffn ({ffn}) must be divisible by nblocks ({self.nblocks})")
            if self.filter_emb_dim % 2 == 0:
                raise ValueError(f"filter_emb_dim must be odd (time, cosines, sines), got {self.filter_emb_dim}")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.word_embeddings = token_embedding(runtime.tokenizer, config.dim, "m2-bert")
        self.position_embeddings = nn.Embedding(config.max_length, config.dim)
        self.embed_norm = nn.LayerNorm(config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(M2Layer(config) for _ in range(config.layers))

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` (sequence, ``dim``) and ``layers + 1`` per-layer states of it."""
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)}, num_layers=config.layers + 1)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode ``{"input_ids", "attention_mask"}`` into ``token`` states (and per-layer states)."""
        if not isinstance(batch, dict) or "input_ids" not in batch:
            raise InputError("m2-bert expects a tokenizer batch with input_ids (e.g. from std.hf-tokenizer)")
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        if ids.shape[1] > self.config.max_length:
            raise InputError(
                f"m2-bert got {ids.shape[1]} tokens but has {self.config.max_length} positions",
                hint="raise the encoder's max_length or truncate in the tokenizer (max_length)",
            )
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        h = self.drop(self.embed_norm(self.word_embeddings(ids) + self.position_embeddings(pos)))
        h = h.masked_fill(~mask.unsqueeze(-1), 0.0)
        states = [h]
        for block in self.blocks:
            h = block(h, mask)
            states.append(h)
        return Encoded({"token": Granularity(h, mask)}, layers=tuple(states) if output_layers else None)
