"""PoNet token mixing and an encoder stack built from it.

For hidden states H [B, T, D] and a mask, one mixing step (official
``PoNetSelfAttention``, multi-head, head width ``h = D / heads``)::

    Q, K, O, S, L = H W_q, H W_k, H W_o, H W_s, H W_l           (five projections)
    g   = masked mean over t of Q                                 per head   [B, heads, h]
    a_t = softmax_t(g · K_t / sqrt(h))  (padding excluded)
    g'  = Σ_t a_t K_t                   (values = keys)            global     [B, D]
    s_i = max over the tokens j of seg(i) of S_j                  segment    [B, T, D]
    l_i = max(L_{i-1}, L_i, L_{i+1})    (MaxPool1d(3, 1, pad 1))   local      [B, T, D]
    o_i = (g' + s_{seg(i)}) ⊙ O_i + l_i

Padding is filled with -1e4 before every max and 0 afterwards. Segments are
``segments`` equal chunks of each item's real length (``seg(i) = floor(i *
segments / length)``), so padding never moves a boundary. A layer is then
BERT's: output dense, dropout, residual + LayerNorm, GELU feed-forward,
residual + LayerNorm.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
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
from repmix.sdk.pooling import masked_mean
from torch import Tensor, nn

#: The fill of padded positions before a max (the official code's -1e4).
PAD_FILL = -1e4


def segment_ids(mask: Tensor, segments: int) -> Tensor:
    """Segment of every position: ``floor(i * segments / length)`` for real positions, ``segments`` for padding."""
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)
    pos = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    seg = torch.div(pos * segments, lengths, rounding_mode="floor").clamp(max=segments - 1)
    return torch.where(mask, seg, torch.full_like(seg, segments))


class PoNetMixing(nn.Module):
    """PoNet's token mixer: global attention pooling + segment max pooling + local max pooling, fused."""

    def __init__(self, dim: int, heads: int, segments: int, kernel: int) -> None:
        super().__init__()
        self.dim, self.heads, self.segments, self.kernel = dim, heads, segments, kernel
        self.head_dim = dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.output_gate = nn.Linear(dim, dim)
        self.segment = nn.Linear(dim, dim)
        self.local = nn.Linear(dim, dim)

    def global_pool(self, q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
        """g' [B, D]: attention of the masked-mean query over the keys (values = keys), per head."""
        b, t, _ = q.shape
        qh = q.view(b, t, self.heads, self.head_dim)
        kh = k.view(b, t, self.heads, self.head_dim)
        g = masked_mean(qh, mask)  # [B, heads, h]
        logits = torch.einsum("bnh,btnh->bnt", g, kh) / math.sqrt(self.head_dim)
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        attn = torch.nan_to_num(logits.softmax(dim=-1))  # an all-padding row gives zeros
        return torch.einsum("bnt,btnh->bnh", attn, kh).reshape(b, self.dim)

    def segment_pool(self, s: Tensor, mask: Tensor) -> Tensor:
        """s_{seg(i)} [B, T, D]: max of S over each position's segment."""
        b, t, d = s.shape
        seg = segment_ids(mask, self.segments)  # [B, T]
        filled = s.masked_fill(~mask.unsqueeze(-1), PAD_FILL)
        pooled = torch.full((b, self.segments + 1, d), PAD_FILL, dtype=s.dtype, device=s.device)
        pooled = pooled.scatter_reduce(1, seg.unsqueeze(-1).expand(b, t, d), filled, reduce="amax", include_self=True)
        return pooled.gather(1, seg.unsqueeze(-1).expand(b, t, d))

    def local_pool(self, lc: Tensor, mask: Tensor) -> Tensor:
        """l_i [B, T, D]: max of L over the window of ``kernel`` positions centred at i."""
        filled = lc.masked_fill(~mask.unsqueeze(-1), PAD_FILL).transpose(1, 2)
        pad = self.kernel // 2
        padded = F.pad(filled, (pad, pad), value=PAD_FILL)
        return F.max_pool1d(padded, self.kernel, stride=1).transpose(1, 2)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Mix tokens: [B, T, D] -> [B, T, D] (padded positions 0)."""
        q, k = self.query(hidden), self.key(hidden)
        o, s, lc = self.output_gate(hidden), self.segment(hidden), self.local(hidden)
        g = self.global_pool(q, k, mask).unsqueeze(1)
        out = (g + self.segment_pool(s, mask)) * o + self.local_pool(lc, mask)
        return out.masked_fill(~mask.unsqueeze(-1), 0.0)


class PoNetLayer(nn.Module):
    """PoNet mixing + output dense + residual/LayerNorm + GELU feed-forward + residual/LayerNorm (post-LN, as BERT)."""

    def __init__(self, dim: int, heads: int, segments: int, kernel: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.mixing = PoNetMixing(dim, heads, segments, kernel)
        self.mix_out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """One layer; padded positions of the output are 0."""
        h = self.norm1(hidden + self.drop(self.mix_out(self.mixing(hidden, mask))))
        h = self.norm2(h + self.drop(self.ffn(h)))
        return h.masked_fill(~mask.unsqueeze(-1), 0.0)


class PoNetEncoder(Encoder):
    """A transformer-style encoder whose self-attention is PoNet's pooling mixer (cost linear in T).

    Token + learned position embeddings (LayerNorm, dropout), then ``layers``
    PoNet layers. Provides ``token`` [B, T, dim] with the tokenizer's mask and,
    with ``output_layers``, ``layers + 1`` per-layer states (index 0 = embedding
    output). The vocabulary size and padding id come from ``runtime.tokenizer``
    (``vocab_size``, ``pad_token_id`` / ``pad_id``), e.g. std's ``hf-tokenizer``.
    Randomly initialised (PoNet's pretraining is left out).
    """

    citation: ClassVar[str] = (
        "Tan, Chen, Wang, Wang, Zhang and Ye (2022). PoNet: Pooling Network for Efficient Token Mixing in "
        "Long Sequences. ICLR 2022. Official code: github.com/lxchtan/PoNet."
    )

    class Config(ComponentConfig):
        """Options of ``ponet``."""

        dim: int = Field(64, ge=1, description="hidden width D")
        layers: int = Field(2, ge=1, description="number of PoNet layers")
        heads: int = Field(4, ge=1, description="heads of the global attention pooling (D divisible by heads)")
        segments: int = Field(4, ge=1, description="segments per item (equal chunks of its real length)")
        kernel: int = Field(3, ge=1, description="local max-pooling window (odd)")
        ffn: int | None = Field(None, ge=1, description="feed-forward width (default 4 * dim)")
        dropout: float = Field(0.1, ge=0, lt=1, description="dropout on embeddings and sublayer outputs")
        max_length: int = Field(512, ge=1, description="number of learned positions (longest input)")

        @model_validator(mode="after")
        def _check(self) -> PoNetEncoder.Config:
            if self.dim % self.heads:
                raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
            if self.kernel % 2 == 0:
                raise ValueError(f"kernel must be odd (centred window), got {self.kernel}")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.token_embeddings = token_embedding(runtime.tokenizer, config.dim, "ponet")
        self.position_embeddings = nn.Embedding(config.max_length, config.dim)
        self.embed_norm = nn.LayerNorm(config.dim)
        self.drop = nn.Dropout(config.dropout)
        ffn = config.ffn or 4 * config.dim
        self.blocks = nn.ModuleList(
            PoNetLayer(config.dim, config.heads, config.segments, config.kernel, ffn, config.dropout)
            for _ in range(config.layers)
        )

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` (sequence, ``dim``) and ``layers + 1`` per-layer states of it."""
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)}, num_layers=config.layers + 1)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode ``{"input_ids", "attention_mask"}`` into ``token`` states (and per-layer states)."""
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        if ids.shape[1] > self.config.max_length:
            raise InputError(
                f"ponet got {ids.shape[1]} tokens but has {self.config.max_length} positions",
                hint="raise the encoder's max_length or truncate in the tokenizer (max_length)",
            )
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        h = self.drop(self.embed_norm(self.token_embeddings(ids) + self.position_embeddings(pos)))
        h = h.masked_fill(~mask.unsqueeze(-1), 0.0)
        states = [h]
        for block in self.blocks:
            h = block(h, mask)
            states.append(h)
        return Encoded({"token": Granularity(h, mask)}, layers=tuple(states) if output_layers else None)
