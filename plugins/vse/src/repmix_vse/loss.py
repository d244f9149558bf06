"""The VSE bidirectional hinge ranking loss over in-batch negatives.

With ``S`` the [B_a, B_b] score matrix of an alignment (row ``k`` pairs with
column ``k``) and margin Δ::

    C = Σ_k Σ_{l≠k} max(0, Δ − S_kk + S_kl)      (first side -> second: rank the second side's items)
      + Σ_k Σ_{l≠k} max(0, Δ − S_kk + S_lk)      (second side -> first)

This is Karpathy & Fei-Fei's (2014) "global ranking objective" that the thesis
uses, and VSE++'s ``ContrastiveLoss(margin, max_violation=False)``
(``fartashf/vsepp/model.py``). ``max_violation: true`` keeps only the hardest
negative of each row and of each column (VSE++'s ``max_violation=True``).
Extra columns beyond ``B_a`` (appended hard negatives) are negatives of the
first direction only; the second direction uses the square part.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from repmix.sdk import ComponentConfig, InputError, Loss, LossInputs, LossOutput
from torch import Tensor


def vse_hinge_costs(scores: Tensor, margin: float, max_violation: bool) -> tuple[Tensor, Tensor]:
    """Per-anchor hinge costs of both directions: ([B_a] first -> second, [B_a] second -> first).

    Without ``max_violation`` each entry is the sum over that anchor's negatives;
    with it, the largest single violation.
    """
    n = scores.shape[0]
    positives = scores.diagonal()  # S_kk, [B_a]
    eye = torch.zeros_like(scores, dtype=torch.bool)
    eye[:, :n] = torch.eye(n, dtype=torch.bool, device=scores.device)
    # rows: anchor k of the first side against every column l (S_kl)
    cost_rows = (margin - positives.unsqueeze(1) + scores).clamp(min=0).masked_fill(eye, 0)
    # columns: anchor k of the second side against every row l (S_lk), square part only
    square = scores[:, :n]
    cost_cols = (margin - positives.unsqueeze(0) + square).clamp(min=0).masked_fill(eye[:, :n], 0)
    if max_violation:
        return cost_rows.max(dim=1).values, cost_cols.max(dim=0).values
    return cost_rows.sum(dim=1), cost_cols.sum(dim=0)


class VseHingeLoss(Loss):
    """Bidirectional hinge (max-margin) ranking loss; sum over in-batch negatives or the hardest one.

    ``reduction: sum`` (default) sums over anchors as the thesis, Karpathy and VSE++
    do; ``mean`` divides by the number of anchors ``B_a`` (batch-size independent
    scale). Logs: the two directions' costs, the fraction of violated pairs and
    the diagonal accuracy.
    """

    citation: ClassVar[str] = (
        "Baqapuri (2015). Deep Learning Applied to Image and Text Matching. EPFL MSc thesis, arXiv:1601.03478. "
        "Karpathy & Fei-Fei (2014/2015). Deep Visual-Semantic Alignments for Generating Image Descriptions. "
        "Faghri, Fleet, Kiros & Fidler (2018). VSE++: Improving Visual-Semantic Embeddings with Hard "
        "Negatives. BMVC 2018."
    )

    class Config(ComponentConfig):
        """Options of ``vse-hinge``."""

        margin: float = Field(
            0.2, ge=0, description="margin Δ (VSE++ default 0.2 for cosine scores; Karpathy used 1)"
        )
        max_violation: bool = Field(
            False, description="hardest in-batch negative only (VSE++) instead of the sum over negatives (VSE)"
        )
        reduction: Literal["sum", "mean"] = Field(
            "sum", description="sum over anchors (as the papers) or their mean (divide by B_a)"
        )

    config: Config

    def forward(self, inputs: LossInputs) -> LossOutput:
        """The hinge loss over the alignment's score matrix (rows: first side, columns: second)."""
        scores = inputs.alignment.scores
        if scores.dim() != 2 or scores.shape[0] < 1 or scores.shape[1] < scores.shape[0]:
            raise InputError(
                "vse-hinge pairs row k with column k, so it needs a [B_a, B_b] score matrix with "
                f"B_b >= B_a >= 1, got shape {tuple(scores.shape)}"
            )
        n = scores.shape[0]
        rows, cols = vse_hinge_costs(scores, self.config.margin, self.config.max_violation)
        total = rows.sum() + cols.sum()
        if self.config.reduction == "mean":
            total = total / n
        with torch.no_grad():
            positives = scores.diagonal().unsqueeze(1)
            off = torch.ones_like(scores, dtype=torch.bool)
            off[:, :n] &= ~torch.eye(n, dtype=torch.bool, device=scores.device)
            violated = ((self.config.margin - positives + scores) > 0) & off
            logs = {
                "cost_first_to_second": float(rows.detach().sum()),
                "cost_second_to_first": float(cols.detach().sum()),
                "violated_fraction": float(violated.sum()) / max(1, int(off.sum())),
                "accuracy": float((scores.detach().argmax(dim=1) == torch.arange(n, device=scores.device)).float().mean()),
            }
        return LossOutput(total, logs)
