"""A small pre-LayerNorm Vision Transformer in plain torch, exposing what the method needs.

Keys, attention weights, key-padding masks, causal masks and prefix key/values are
reachable here, which transformers' ``ViTModel`` does not expose in a stable way across
versions; written here rather than wrapping transformers for that reason. One
implementation in the SDK serves every vision plugin (SEED, MULTI-LANE, Pixel
Linguist, token-correlation compression).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from repmix.core.errors import ConfigError
from torch import Tensor, nn


def image_geometry(tokenizer: Any, component: str = "this encoder") -> tuple[int, int, int]:
    """(image_size, patch_size, channels) declared by the tower's image tokenizer (duck-typed on its config).

    Encoders read the geometry from the tokenizer (``Runtime.tokenizer``), so it is
    written once in YAML; ``component`` names the encoder in the error.
    """
    cfg = getattr(tokenizer, "config", None)
    try:
        return int(cfg.image_size), int(cfg.patch_size), int(cfg.channels)  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        raise ConfigError(
            f"{component} reads image_size, patch_size and channels from the tower's tokenizer, "
            f"which does not declare them ({type(tokenizer).__name__})",
            hint="use the image-patches tokenizer (repmix-std) in this tower",
        ) from None


def patchify(pixels: Tensor, patch_size: int) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, N, C·p·p]``, patches in row-major order."""
    b, c, h, w = pixels.shape
    p = patch_size
    x = pixels.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads {heads} must divide dim {dim}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

    def keys(self, x: Tensor) -> Tensor:
        """The attention keys of ``x`` (before the head split), ``[B, N, D]``."""
        return self.k(self.norm1(x))

    def attend(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        allowed: Tensor | None = None,
        prefix: tuple[Tensor, Tensor] | None = None,
        context: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attention output (before the residual) and weights ``[B, H, N, M]``.

        ``mask`` [B, M]: True = a real key; ``allowed`` [N, M]: True = query may see key
        (causal masks); ``prefix``: extra (keys, values) ``[B, P, D]`` put in front (prefix
        prompts, always visible); ``context``: attend to these tokens instead of ``x``
        (cross-attention; ``mask`` then refers to them).
        """
        h = self.norm1(x)
        src = h if context is None else context
        q, k, v = self.q(h), self.k(src), self.v(src)
        m = mask
        if prefix is not None:
            k = torch.cat([prefix[0], k], dim=1)
            v = torch.cat([prefix[1], v], dim=1)
            if m is not None:
                m = torch.cat([torch.ones(m.shape[0], prefix[0].shape[1], dtype=torch.bool, device=m.device), m], 1)
            if allowed is not None:
                allowed = torch.cat(
                    [torch.ones(allowed.shape[0], prefix[0].shape[1], dtype=torch.bool, device=allowed.device), allowed], 1
                )
        q, k, v = self._split(q), self._split(k), self._split(v)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        block = torch.zeros_like(logits, dtype=torch.bool)
        if m is not None:
            block = block | ~m[:, None, None, :]
        if allowed is not None:
            block = block | ~allowed[None, None]
        logits = logits.masked_fill(block, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)
        out = (weights @ v).transpose(1, 2).reshape(x.shape)
        return self.proj(out), weights

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        allowed: Tensor | None = None,
        prefix: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        a, _ = self.attend(x, mask, allowed, prefix)
        x = x + a
        return x + self.mlp(self.norm2(x))


class PatchViT(nn.Module):
    """Linear patch embedding + learned positions + CLS + pre-LN blocks + final LayerNorm."""

    def __init__(self, patch_dim: int, num_patches: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Linear(patch_dim, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, num_patches + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def tokens(self, patches: Tensor) -> Tensor:
        """``[B, N, P]`` patches -> ``[B, N+1, D]`` (CLS first) with positions."""
        x = self.embed(patches)
        cls = self.cls.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos[:, : x.shape[1] + 1]

    def forward(self, patches: Tensor, mask: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Final normed tokens ``[B, N+1, D]`` and every hidden state (embedding output first)."""
        x = self.tokens(patches)
        full = None if mask is None else torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        states = [x]
        for blk in self.blocks:
            x = blk(x, full)
            states.append(x)
        return self.norm(x), states
