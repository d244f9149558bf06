"""Monarch Mixer building blocks: implicit Hyena filters, FFT long convolution, the sequence mixer, Monarch GLU MLP.

Written from the official code's description (``HazyResearch/m2``:
``bert/src/mm/monarch_mixer_sequence_mixer.py``, ``hyena_utils.py``,
``blockdiag_linear.py``, ``bert_layers.py``):

Sequence mixer, input u [B, T, D] with a mask::

    x1, x2, v = split(shortconv3(Linear_{D→3D}(u)))      depthwise, causal kernel 3
    v ← v ⊙ x1
    y = longconv(v) + bias ⊙ v                           per channel, by FFT
    y ← y ⊙ x2  (+ longconv₂(u) with residual_long_conv)
    out = Linear_{D→D}(y)

The long convolution is non-causal (bidirectional): with implicit filters
k_fwd, k_rev [D, T] (an MLP with sine activations over positional features,
times an exponential decay),

    y_i = Σ_{j ≤ i} k_fwd[i − j] v_j + Σ_{j > i} k_rev[j − i − 1] v_j,

computed as one circular convolution of length 2T with the kernel
[k_fwd, flip(k_rev)] (zero-padded so nothing wraps around). The causal variant
drops the second sum. Padded positions are zeroed before every convolution,
so padding never reaches a real position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BlockdiagLinear",
    "HyenaFilter",
    "MonarchGLU",
    "MonarchMixerSequenceMixing",
    "direct_long_conv",
    "fft_long_conv",
]


def fft_long_conv(v: Tensor, k_fwd: Tensor, k_rev: Tensor | None) -> Tensor:
    """y [B, D, T]: the long convolution of v [B, D, T] with k_fwd (and k_rev, non-causal) [D, T], by FFT of size 2T."""
    t = v.shape[-1]
    n = 2 * t
    tail = torch.zeros_like(k_fwd) if k_rev is None else k_rev.flip(-1)
    kernel = torch.cat([k_fwd, tail], dim=-1)  # circular kernel: lag m ≥ 0 at m, lag −s at 2T − s
    work = torch.promote_types(v.dtype, torch.float32)
    y = torch.fft.irfft(torch.fft.rfft(v.to(work), n=n) * torch.fft.rfft(kernel.to(work), n=n), n=n)
    return y[..., :t].to(v.dtype)


def direct_long_conv(v: Tensor, k_fwd: Tensor, k_rev: Tensor | None) -> Tensor:
    """The same convolution computed directly (``conv1d`` with the materialised kernel over lags −(T−1)..T−1)."""
    _, d, t = v.shape
    back = torch.zeros_like(k_fwd[:, : t - 1]) if k_rev is None else k_rev[:, : t - 1]
    # weight over lags −(T−1) .. (T−1): lag ℓ ≥ 0 -> k_fwd[ℓ], lag −s -> k_rev[s − 1]
    lags = torch.cat([back.flip(-1), k_fwd], dim=-1)  # index p <-> lag p − (T − 1)
    # conv1d is a cross-correlation: out_i = Σ_p w_p in_{i + p − (T−1)} = Σ_j w_{j − i + T − 1} v_j, so w_p = lags[-p]
    weight = lags.flip(-1).unsqueeze(1)  # [D, 1, 2T − 1]
    return F.conv1d(v, weight, padding=t - 1, groups=d)


def _positional_features(l_max: int, emb_dim: int) -> tuple[Tensor, Tensor]:
    """z [1, l_max, emb_dim] = [t, Re e^{-i f w}, Im e^{-i f w}] and t [1, l_max, 1] (Hyena's positional features)."""
    t = torch.linspace(0, 1, l_max)[None, :, None]
    bands = (emb_dim - 1) // 2
    w = 2 * math.pi * torch.linspace(0, l_max - 1, l_max)[None, :, None] / l_max
    f = torch.linspace(1e-4, bands - 1, bands)[None, None]
    z = torch.exp(-1j * f * w)
    return torch.cat([t, z.real, z.imag], dim=-1), t


class HyenaFilter(nn.Module):
    """Implicit long filters k [D, T]: an MLP (sine activations, frequency ``w``) over positional features, decayed.

    ``kernel(L)`` gives k_fwd and ``kernel(L, reverse=True)`` k_rev (a second MLP,
    bidirectional only). The filter at lag m does not depend on L (positions are
    fixed for ``l_max``). ``bias`` [D] is the skip term y += bias ⊙ v.
    """

    def __init__(
        self, dim: int, order: int, l_max: int, *, emb_dim: int = 3, w: float = 10.0, inner: int = 2,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.dim, self.l_max, self.bidirectional = dim, l_max, bidirectional
        z, t = _positional_features(l_max, emb_dim)
        self.register_buffer("z", z, persistent=False)
        self.register_buffer("t", t, persistent=False)
        fast, slow, target = 0.3, 1.5, 1e-2
        deltas = torch.linspace(math.log(target) / slow, math.log(target) / fast, dim)[None, None]
        self.register_buffer("deltas", deltas, persistent=False)
        self.freq = nn.Parameter(w * torch.ones(order))  # shared by every sine activation (as the official Sin)
        self.fwd = self._mlp(emb_dim, order, dim, inner)
        self.rev = self._mlp(emb_dim, order, dim, inner) if bidirectional else None
        self.bias = nn.Parameter(torch.randn(dim))

    @staticmethod
    def _mlp(emb_dim: int, order: int, dim: int, inner: int) -> nn.ModuleList:
        layers = [nn.Linear(emb_dim, order), *(nn.Linear(order, order) for _ in range(inner))]
        return nn.ModuleList([*layers, nn.Linear(order, dim, bias=False)])

    def kernel(self, length: int, reverse: bool = False) -> Tensor:
        """k [D, length] (forward, or reverse when ``reverse``)."""
        mlp = self.rev if reverse else self.fwd
        if mlp is None:
            raise ValueError("a causal filter has no reverse kernel")
        h = self.z[:, :length]
        for layer in mlp[:-1]:
            h = torch.sin(self.freq * layer(h))
        h = mlp[-1](h) * torch.exp(-self.t[:, :length] * self.deltas.abs())
        return h[0].transpose(0, 1)

    def forward(self, v: Tensor) -> Tensor:
        """y [B, D, T] = longconv(v) + bias ⊙ v, for v [B, D, T]."""
        length = v.shape[-1]
        k_rev = self.kernel(length, reverse=True) if self.bidirectional else None
        return fft_long_conv(v, self.kernel(length), k_rev) + v * self.bias[None, :, None]


class MonarchMixerSequenceMixing(nn.Module):
    """M2's attention replacement: in-projection, short conv, gated implicit long convolution, out-projection."""

    def __init__(
        self, dim: int, l_max: int, *, order: int = 16, bidirectional: bool = True, residual_long_conv: bool = False,
        emb_dim: int = 3, w: float = 10.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.in_linear = nn.Linear(dim, 3 * dim)
        self.out_linear = nn.Linear(dim, dim)
        self.short_filter = nn.Conv1d(3 * dim, 3 * dim, kernel_size=3, groups=3 * dim, padding=2)
        self.filter = HyenaFilter(dim, order, l_max, emb_dim=emb_dim, w=w, bidirectional=bidirectional)
        self.filter2 = (
            HyenaFilter(dim, order, l_max, emb_dim=emb_dim, w=w, bidirectional=bidirectional)
            if residual_long_conv
            else None
        )

    def forward(self, u: Tensor, mask: Tensor) -> Tensor:
        """u [B, T, D], mask [B, T] bool -> [B, T, D] (padded positions never influence real ones)."""
        t = u.shape[1]
        keep = mask.unsqueeze(1).to(u.dtype)  # [B, 1, T]
        p = self.in_linear(u).transpose(1, 2) * keep
        uc = self.short_filter(p)[..., :t]  # causal: position i sees i−2..i
        x1, x2, v = uc.split(self.dim, dim=1)
        y = self.filter((v * x1) * keep) * x2
        if self.filter2 is not None:
            y = y + self.filter2(u.transpose(1, 2) * keep)
        return self.out_linear(y.transpose(1, 2))


class BlockdiagLinear(nn.Module):
    """A block-diagonal (Monarch) linear map: ``nblocks`` independent [out/nb × in/nb] blocks, plus a bias."""

    def __init__(self, in_features: int, out_features: int, nblocks: int, bias: bool = True) -> None:
        super().__init__()
        if in_features % nblocks or out_features % nblocks:
            raise ValueError(f"{in_features} -> {out_features} is not divisible into {nblocks} blocks")
        self.nblocks = nblocks
        self.weight = nn.Parameter(torch.empty(nblocks, out_features // nblocks, in_features // nblocks))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        bound = 1 / math.sqrt(in_features // nblocks)  # nn.Linear's default init, per block
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def dense(self) -> Tensor:
        """The equivalent dense weight [out, in] (block diagonal)."""
        return torch.block_diag(*self.weight.unbind(0))

    def forward(self, x: Tensor) -> Tensor:
        xb = x.reshape(*x.shape[:-1], self.nblocks, -1)
        y = torch.einsum("...ki,koi->...ko", xb, self.weight).reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


class MonarchGLU(nn.Module):
    """M2-BERT's state mixer: GLU with block-diagonal matrices, then residual + post-LayerNorm."""

    def __init__(self, dim: int, ffn: int, nblocks: int, dropout: float) -> None:
        super().__init__()
        self.ffn = ffn
        self.gated_layers = BlockdiagLinear(dim, 2 * ffn, nblocks, bias=False)
        self.wo = BlockdiagLinear(ffn, dim, nblocks)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor) -> Tensor:
        g = self.gated_layers(h)
        mixed = F.gelu(g[..., : self.ffn]) * g[..., self.ffn :]
        return self.norm(self.wo(self.drop(mixed)) + h)
