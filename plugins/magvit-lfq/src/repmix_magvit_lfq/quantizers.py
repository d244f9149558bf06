"""Lookup-free quantization (MAGVIT-v2), a VQ baseline and a causal 3-D convolution.

LFQ (Yu et al., MAGVIT-v2; formulas as in the third-party ``lucidrains/vector-quantize-pytorch``
``lookup_free_quantization.py``):

* q = sign(z) in {-1, +1}^K (z_k = 0 maps to -1), straight-through gradient;
* token id = sum_k 2^k 1[z_k > 0]: a bijection between sign patterns and [0, 2^K);
* p(c | z) = softmax_c(2 <z, c> / T) over the 2^K codes c in {-1, +1}^K;
  entropy penalty = E_z[H(p(.|z))] - gamma H(E_z[p(.|z)]) (confident per sample, diverse per batch);
* commitment = ||z - sg[q]||^2 (mean).

VQ (van den Oord et al. 2017): nearest of 2^K learned codes; codebook term ||sg[z] - e||^2,
commitment beta ||z - sg[e]||^2; straight-through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lfq_quantize(z: Tensor) -> Tensor:
    """sign(z) in {-1, +1} (0 -> -1) with a straight-through gradient (dq/dz = identity)."""
    q = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
    return z + (q - z).detach()


def codes_to_ids(q: Tensor) -> Tensor:
    """``[..., K]`` codes (sign patterns) -> ``[...]`` ids = sum_k 2^k 1[q_k > 0]."""
    k = q.shape[-1]
    weights = 2 ** torch.arange(k, device=q.device, dtype=torch.long)
    return ((q > 0).long() * weights).sum(-1)


def ids_to_codes(ids: Tensor, k: int) -> Tensor:
    """``[...]`` ids in [0, 2^K) -> ``[..., K]`` codes in {-1, +1} (inverse of :func:`codes_to_ids`)."""
    bits = (ids.unsqueeze(-1) >> torch.arange(k, device=ids.device)) & 1
    return bits.float() * 2 - 1


def all_codes(k: int, device: torch.device | None = None) -> Tensor:
    """Every code of {-1, +1}^K, row i = ids_to_codes(i): ``[2^K, K]``."""
    return ids_to_codes(torch.arange(2**k, device=device), k)


def entropy_terms(z: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """(mean per-sample entropy, entropy of the mean distribution) of p(c|z) = softmax_c(2<z,c>/T).

    ``z``: ``[M, K]`` latents (M samples). Both in nats; the second is at most K ln 2.
    """
    codes = all_codes(z.shape[-1], z.device)
    logits = 2.0 * z @ codes.T / temperature
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    per_sample = -(p * logp).sum(-1).mean()
    avg = p.mean(0)
    batch = -(avg * torch.log(avg.clamp_min(1e-12))).sum()
    return per_sample, batch


def vq_quantize(z: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest codebook rows of ``z`` ``[M, d]``: (straight-through z_q, ids, raw z_q)."""
    d = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(-1)[None])
    ids = d.argmin(-1)
    zq = codebook[ids]
    return z + (zq - z).detach(), ids, zq


class CausalConv3d(nn.Module):
    """A 3-D convolution causal in time: frame t sees frames <= t only (MAGVIT-v2).

    Time is padded with ``kt - 1`` frames in front (replicating the first frame), none
    behind; space is padded symmetrically. An image is a one-frame video, so images and
    videos share one tokenizer, and the tokens of frame 0 do not depend on later frames.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (3, 3, 3), stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.kt = kernel[0]
        self.pad_hw = (kernel[1] // 2, kernel[2] // 2)
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=(0, *self.pad_hw))

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` -> ``[B, C', T', H', W']``."""
        if self.kt > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1), x], dim=2)
        return self.conv(x)


def mse(a: Tensor, b: Tensor) -> Tensor:
    return F.mse_loss(a, b)
