"""ORMA's per-level loss: symmetric InfoNCE with Text2Mol's learnable ``exp(temp)`` multiplier.

ORMA (official code, ``modeling.py``) keeps one learnable scalar ``temp``,
initialised at 0.07, and multiplies *every representation* by ``exp(temp)``
(inherited from Text2Mol) instead of dividing logits by a temperature. Each
level's loss is ``(CE(logits, arange) + CE(logits.T, arange)) / 2`` and the
objective is the weighted sum of the three levels.

In repmix the towers produce the representations without the multiplier and
the loss applies it to the alignment's scores: ``logits = scores * exp(exponent * temp)``.

* Sentence–molecule level (``dot`` alignment): both sides carry ``exp(temp)``,
  so ``exponent: 2`` (the default) gives exactly ORMA's logits
  ``(e^t s) · (e^t m) = e^{2t} s · m``.
* Token–atom and multitoken–motif levels: every input of the pooling is
  L2-normalised or min–max normalised before the LayerNorm, so the multiplier
  cancels there (ORMA's fine-grained logits carry no temperature);
  ``exponent: 0`` (no parameter) or std's ``info-nce`` with ``temperature: 1``
  reproduce them.
* On a ``cosine`` alignment ORMA's multiplier would cancel too;
  ``exponent: 2`` there is a learnable CLIP-style scale, not ORMA.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    Runtime,
)
from torch import Tensor, nn

from repmix_orma.fine_grained import ORMA_CITATION

TEXT2MOL_CITATION = (
    "Edwards, Zhai & Ji (2021). Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries. "
    "EMNLP 2021 (the learnable exp(temp) multiplier)."
)


def symmetric_cross_entropy(logits: Tensor, symmetric: bool = True) -> Tensor:
    """ORMA's ``cross_entropy_loss``: mean of CE over rows and over columns, diagonal targets.

    ``logits`` is ``[B_a, B_b]`` with ``B_b >= B_a``; row ``i`` is paired with
    column ``i``. The column term reads the first ``B_a`` columns (extra columns
    are negatives of the rows only).
    """
    if logits.dim() != 2:
        raise InputError(f"info-nce-exp needs a [B_a, B_b] score matrix, got shape {tuple(logits.shape)}")
    n_a, n_b = logits.shape
    if n_a < 1 or n_b < n_a:
        raise InputError(
            "info-nce-exp pairs row i with column i, so it needs at least as many columns as rows "
            f"(and at least one row), got scores of shape {tuple(logits.shape)}"
        )
    targets = torch.arange(n_a, device=logits.device)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        loss = (loss + F.cross_entropy(logits[:, :n_a].transpose(0, 1), targets)) / 2
    return loss


class ExpTemperatureInfoNCE(Loss):
    """Symmetric InfoNCE on ``scores * exp(exponent * temp)`` with ORMA's learnable ``temp`` (init 0.07).

    One loss per level, each ``on:`` its alignment with a ``weight:`` (the
    weighted sum is ORMA's ``combine_grain``). ``temp`` is unconstrained, as in
    ORMA; with ``exponent: 0`` the multiplier is 1 and no parameter is created.
    """

    citation: ClassVar[str] = ORMA_CITATION + " " + TEXT2MOL_CITATION

    class Config(ComponentConfig):
        """Options of ``orma.info-nce-exp``."""

        temp: float = Field(0.07, description="initial value of the learnable scalar temp (ORMA, Text2Mol: 0.07)")
        learnable: bool = Field(True, description="learn temp (ORMA does); false keeps it fixed")
        exponent: float = Field(
            2.0,
            ge=0,
            description="logits = scores * exp(exponent * temp): 2 for a dot product of two sides that ORMA "
            "both multiplies by exp(temp); 0 where the multiplier cancels (fine-grained levels)",
        )
        symmetric: bool = Field(True, description="average the text->molecule and molecule->text cross-entropies")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if config.learnable and config.exponent != 0:
            self.temp = nn.Parameter(torch.tensor(float(config.temp)))
        else:
            self.register_parameter("temp", None)

    def current_temp(self) -> Tensor | float:
        """The scalar ``temp`` (a parameter when learnable)."""
        return self.config.temp if self.temp is None else self.temp

    def scale(self) -> Tensor | float:
        """The logit multiplier ``exp(exponent * temp)``."""
        temp = self.current_temp()
        if isinstance(temp, Tensor):
            return torch.exp(self.config.exponent * temp)
        return math.exp(self.config.exponent * temp)

    def forward(self, inputs: LossInputs) -> LossOutput:
        """Symmetric cross-entropy of the scaled scores with the diagonal as targets."""
        scores = inputs.alignment.scores
        scale = self.scale()
        loss = symmetric_cross_entropy(scores * scale, self.config.symmetric)
        n = scores.shape[0]
        with torch.no_grad():
            accuracy = float((scores.argmax(dim=1) == torch.arange(n, device=scores.device)).float().mean())
        temp = self.current_temp()
        logs = {
            "temp": float(temp.detach()) if isinstance(temp, Tensor) else float(temp),
            "scale": float(scale.detach()) if isinstance(scale, Tensor) else float(scale),
            "accuracy": accuracy,
        }
        return LossOutput(loss, logs)
