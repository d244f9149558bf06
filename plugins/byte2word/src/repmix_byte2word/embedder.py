"""The Byte2Word embedder: K learned latent queries cross-attend to one word's bytes -> one word vector.

Lee, Guo, Qiu (2022), Word-Level Representation From Bytes For Language Modeling
(arXiv 2211.12677): a word's UTF-8 bytes (padded to ``L``) get a byte embedding
(``256+ x d_b``) plus a byte-position embedding; ``K`` latent queries attend to them
(Perceiver-style cross-attention with a pre-LN MLP), and the ``K`` latent outputs,
concatenated, are projected to the model width ``D``. Each word is embedded on its own,
so a word's vector depends on its bytes alone, and the parameters do not grow with a
vocabulary: this module replaces the ``V x D`` sub-word embedding table.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ByteToWordEmbedder(nn.Module):
    """``[N, L]`` byte ids of N words (+ mask) -> ``[N, D]`` word vectors by latent-query cross-attention."""

    def __init__(self, vocab_size: int, max_word_bytes: int, byte_dim: int, latents: int, heads: int,
                 mlp_ratio: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.byte_embedding = nn.Embedding(vocab_size, byte_dim)
        self.byte_positions = nn.Embedding(max_word_bytes, byte_dim)
        self.latents = nn.Parameter(torch.randn(latents, byte_dim) * 0.02)
        self.norm_latents = nn.LayerNorm(byte_dim)
        self.norm_bytes = nn.LayerNorm(byte_dim)
        self.attention = nn.MultiheadAttention(byte_dim, heads, dropout=dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(byte_dim)
        self.mlp = nn.Sequential(nn.Linear(byte_dim, mlp_ratio * byte_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * byte_dim, byte_dim))
        self.project = nn.Linear(latents * byte_dim, dim)

    def forward(self, word_bytes: Tensor, mask: Tensor) -> Tensor:
        """``word_bytes`` [N, L] ids, ``mask`` [N, L] bool (True: a real byte; every row has one) -> [N, D]."""
        n, length = word_bytes.shape
        pos = torch.arange(length, device=word_bytes.device)
        keys = self.norm_bytes(self.byte_embedding(word_bytes) + self.byte_positions(pos)[None])
        z = self.latents[None].expand(n, -1, -1)
        attended, _ = self.attention(self.norm_latents(z), keys, keys, key_padding_mask=~mask, need_weights=False)
        z = z + attended
        z = z + self.mlp(self.norm_mlp(z))
        return self.project(z.reshape(n, -1))


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
