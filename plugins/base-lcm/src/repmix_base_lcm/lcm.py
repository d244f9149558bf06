"""Base-LCM: the robust scaler, the causal next-concept model and its loss (plain torch / numpy)."""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import Tensor, nn

#: IQR of the standard normal: scipy.stats.norm.ppf(0.75) - norm.ppf(0.25) (sklearn's unit_variance divisor).
NORMAL_IQR = 2.0 * 0.6744897501960817

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split at ., ! or ? followed by whitespace and an upper-case letter or a digit (a rule, not a model)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


class RobustScaler(nn.Module):
    """``gaussian_robust`` normalisation: (x - median) / (IQR / 1.349), per dimension.

    Equal to scikit-learn's ``RobustScaler(unit_variance=True)`` (quantiles 25/75 by linear
    interpolation, ``np.percentile``'s default; a zero IQR scales by 1, as sklearn does). ``clip``
    clamps normalised values to [-clip, clip] (the official normaliser's optional clipping).
    """

    def __init__(self, dim: int, clip: float | None = None) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.clip = clip

    @torch.no_grad()
    def fit(self, x: np.ndarray | Tensor) -> RobustScaler:
        arr = x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.center.shape[0] or arr.shape[0] < 2:
            raise ValueError(f"fit needs an [N >= 2, {self.center.shape[0]}] array, got shape {arr.shape}")
        q25, med, q75 = np.percentile(arr, [25.0, 50.0, 75.0], axis=0)
        iqr = q75 - q25
        iqr[iqr == 0.0] = 1.0
        self.center.copy_(torch.from_numpy(med))
        self.scale.copy_(torch.from_numpy(iqr / NORMAL_IQR))
        self.fitted.fill_(True)
        return self

    def normalize(self, x: Tensor) -> Tensor:
        z = (x - self.center.to(x.dtype)) / self.scale.to(x.dtype)
        return z.clamp(-self.clip, self.clip) if self.clip is not None else z

    def denormalize(self, z: Tensor) -> Tensor:
        return z * self.scale.to(z.dtype) + self.center.to(z.dtype)


class BaseLCM(nn.Module):
    """PreNet (Linear d -> D + learned positions) -> causal transformer -> PostNet (Linear D -> d).

    ``forward(x, mask)`` with normalised sentence embeddings ``x`` [B, S, d] returns ``y`` [B, S, d]:
    ``y[:, i]`` predicts ``x[:, i + 1]`` from the learned beginning-of-document vector and
    ``x[:, :i + 1]`` (the prediction from the BOD vector alone is dropped: min_context_size = 1).
    Right padding never reaches a real position (causal attention), so no key mask is needed.
    """

    def __init__(self, dim: int, model_dim: int = 256, layers: int = 2, heads: int = 4, ff_dim: int = 1024,
                 dropout: float = 0.1, max_sentences: int = 64) -> None:
        super().__init__()
        self.max_sentences = max_sentences
        self.bod = nn.Parameter(torch.zeros(dim))
        self.prenet = nn.Linear(dim, model_dim)
        self.positions = nn.Embedding(max_sentences + 1, model_dim)
        layer = nn.TransformerEncoderLayer(model_dim, heads, ff_dim, dropout, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.decoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(model_dim)
        self.postnet = nn.Linear(model_dim, dim)
        nn.init.normal_(self.bod, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, s, _ = x.shape
        if s > self.max_sentences:
            raise ValueError(f"{s} sentences exceed max_sentences {self.max_sentences}")
        if mask is not None:
            x = x.masked_fill(~mask.bool().unsqueeze(-1), 0.0)
        seq = torch.cat([self.bod.to(x.dtype).expand(b, 1, -1), x], dim=1)
        h = self.prenet(seq) + self.positions(torch.arange(s + 1, device=x.device))
        causal = torch.triu(torch.full((s + 1, s + 1), float("-inf"), device=x.device), diagonal=1)
        h = self.decoder(h, mask=causal, is_causal=True)
        return self.postnet(self.final_norm(h))[:, 1:]


def next_concept_loss(pred: Tensor, x: Tensor, mask: Tensor, rmse: bool = True, eps: float = 1e-5) -> Tensor:
    """Mean over targets x_{i+1} (both sentences real) of sqrt(sum_c (y_i - x_{i+1})^2 + eps), or of the MSE.

    ``rmse=True`` is the official ``compute_rmse`` default (an L2 distance per target); False gives
    the mean squared error per dimension.
    """
    valid = mask[:, 1:].bool() & mask[:, :-1].bool()
    diff = pred[:, :-1] - x[:, 1:]
    per = torch.sqrt(diff.pow(2).sum(-1) + eps) if rmse else diff.pow(2).mean(-1)
    if not bool(valid.any()):
        return pred.sum() * 0.0
    return per[valid].mean()
