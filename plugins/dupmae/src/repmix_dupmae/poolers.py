"""DupMAE's embeddings: the ordinary-token (OT) vector and the unified [CLS] ⊕ reduced-OT embedding.

``dupmae.ot`` (the official ``ot_embedding``)::

    e_ot[v] = max_{t >= 1, real} Z[t, v]          Z = MLM-head logits (the encoder's 'vocab' granularity)

i.e. a max over every real position except the first ([CLS]); [SEP] is included, as in the
official code (which slices ``logits[:, 1:]`` and adds -1000 at padding; here padding is
excluded exactly, so padding can never change e_ot).

``dupmae.unified``: the paper fine-tunes on the concatenation of the [CLS] embedding and the OT
embedding "after dimension reduction and aggregation", a step the released code does not
contain (issue #29 of staoxiao/RetroMAE points to SPLADE). **The reduction is a repmix choice**,
configurable:

* ``reduction: topk`` (default) — keep the k largest entries of e_ot, zero the rest: a sparse
  bag-of-words vector of width V (lexical matching, as the BoW objective trains e_ot for);
* ``reduction: linear`` — a learned ``Linear(V, out_dim)`` map to a dense d_o-dimensional vector.

Then, with ``normalize_parts`` (default), each part is L2-normalised and the OT part scaled
by ``ot_weight``, so a cosine between two unified embeddings is
``(cos_cls + ot_weight^2 * cos_ot) / (1 + ot_weight^2)``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    PipelineError,
    Pooler,
    PoolerConfig,
    Runtime,
)
from repmix.sdk.pooling import first_real_token, masked_max
from torch import Tensor, nn

from repmix_dupmae import CITATION


def ordinary_token_vector(logits: Tensor, mask: Tensor) -> Tensor:
    """e_ot [B, V]: max of ``logits`` [B, L, V] over the real positions after the first.

    A text with a single real position (no ordinary token; BERT input always has [SEP]
    after [CLS]) falls back to that position, so the vector is always defined.
    """
    mask = mask.bool()
    rows = torch.arange(mask.shape[0], device=mask.device)
    first = mask.to(torch.int32).argmax(dim=1)
    ordinary = mask.clone()
    ordinary[rows, first] = False
    ordinary = torch.where(ordinary.any(dim=1, keepdim=True), ordinary, mask)
    return masked_max(logits, ordinary)


class OrdinaryTokenPooler(Pooler):
    """DupMAE's ordinary-token vector: max over positions >= 1 of the MLM-head logits (width V)."""

    citation: ClassVar[str] = CITATION

    class Config(PoolerConfig):
        """Options of ``dupmae.ot``."""

        source: str = Field("vocab", description="the vocabulary-logit sequence granularity of dupmae.encoder")
        normalize: bool = Field(False, description="L2-normalise the OT vector")

    config: Config

    def forward(self, encoded: Encoded) -> Granularity:
        """e_ot from the source's logits and mask."""
        g = encoded[self.config.source]
        out = ordinary_token_vector(g.hidden, g.full_mask())
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)


class UnifiedPooler(Pooler):
    """DupMAE's unified embedding: [CLS] ⊕ reduce(e_ot) (reduction: top-k sparse, or learned linear)."""

    citation: ClassVar[str] = CITATION

    class Config(PoolerConfig):
        """Options of ``dupmae.unified``."""

        source: str = Field("token", description="the token-state granularity (its first real position is [CLS])")
        vocab_source: str = Field("vocab", description="the vocabulary-logit granularity (the OT vector's input)")
        reduction: Literal["topk", "linear"] = Field(
            "topk", description="how e_ot is reduced (a repmix choice; the paper does not release it)"
        )
        k: int = Field(128, ge=1, description="entries of e_ot kept by reduction: topk")
        out_dim: int = Field(128, ge=1, description="width d_o of reduction: linear")
        normalize_parts: bool = Field(True, description="L2-normalise the [CLS] part and the OT part before concatenating")
        ot_weight: float = Field(1.0, ge=0, description="scale of the OT part after normalisation")
        normalize: bool = Field(False, description="L2-normalise the concatenation")

        @model_validator(mode="after")
        def _sources_differ(self) -> UnifiedPooler.Config:
            if self.source == self.vocab_source:
                raise ValueError("source (token states) and vocab_source (logits) must be different granularities")
            return self

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """Needs both granularities; width d + (V for topk, out_dim for linear)."""
        spec = super().signature(config, encoder)
        assert isinstance(config, cls.Config)
        vocab = encoder.granularities.get(config.vocab_source)
        if vocab is None or vocab.shape != "sequence":
            raise PipelineError(
                f"dupmae.unified reads vocabulary logits from {config.vocab_source!r}, which the encoder does not "
                "provide as a sequence",
                found=config.vocab_source,
                allowed=sorted(encoder.granularities),
                hint="use dupmae.encoder with vocab_logits: true",
            )
        if config.reduction == "topk" and vocab.dim is not None and config.k > vocab.dim:
            raise PipelineError(f"dupmae.unified keeps k={config.k} entries of a {vocab.dim}-wide OT vector", found=config.k)
        ot = config.out_dim if config.reduction == "linear" else vocab.dim
        dim = None if spec.dim is None or ot is None else spec.dim + ot
        return GranularitySpec("pooled", dim)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        vocab = None if runtime.encoder is None else runtime.encoder.granularities.get(self.config.vocab_source)
        self.projection: nn.Linear | None = None
        if self.config.reduction == "linear":
            if vocab is None or vocab.dim is None:
                raise ConfigError("dupmae.unified with reduction: linear needs the vocabulary width (injected by the builder)")
            self.projection = nn.Linear(vocab.dim, self.config.out_dim)

    def reduce(self, ot: Tensor) -> Tensor:
        """The configured reduction of e_ot [B, V]."""
        if self.projection is not None:
            return self.projection(ot)
        values, index = ot.topk(self.config.k, dim=-1)
        return torch.zeros_like(ot).scatter(-1, index, values)

    def forward(self, encoded: Encoded) -> Granularity:
        """[CLS] ⊕ reduce(e_ot), parts normalised and weighted."""
        tokens = encoded[self.config.source]
        logits = encoded[self.config.vocab_source]
        cls = first_real_token(tokens.hidden, tokens.full_mask())
        ot = self.reduce(ordinary_token_vector(logits.hidden, logits.full_mask()))
        if self.config.normalize_parts:
            cls, ot = F.normalize(cls, p=2, dim=-1), F.normalize(ot, p=2, dim=-1)
        out = torch.cat([cls, self.config.ot_weight * ot], dim=-1)
        return Granularity(F.normalize(out, p=2, dim=-1) if self.config.normalize else out)
