"""Contrastive losses over an alignment's score matrix [B_a, B_b].

Row ``i`` of the first side is paired with column ``i`` of the second (the
diagonal); every other column of the row is an in-batch negative. ``B_b`` may
exceed ``B_a`` when extra (hard-negative) items are appended to the second
side.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    Runtime,
)
from torch import Tensor, nn


def _check_scores(scores: Tensor, name: str) -> int:
    """Require a [B_a, B_b] matrix with B_b >= B_a >= 1; return B_a."""
    if scores.dim() != 2:
        raise InputError(f"{name} needs a [B_a, B_b] score matrix, got shape {tuple(scores.shape)}")
    n_a, n_b = scores.shape
    if n_a < 1 or n_b < n_a:
        raise InputError(
            f"{name} pairs row i with column i, so it needs at least as many columns as rows "
            f"(and at least one row), got scores of shape {tuple(scores.shape)}"
        )
    return n_a


@torch.no_grad()
def _diagonal_accuracy(scores: Tensor, n: int) -> float:
    """Share of rows whose best column is their own (the diagonal)."""
    return float((scores.argmax(dim=1) == torch.arange(n, device=scores.device)).float().mean())


class InfoNCELoss(Loss):
    """Symmetric InfoNCE (as in CLIP): cross-entropy of scores / temperature with the diagonal as targets.

    ``loss = (CE(S / t, diag) + CE(S[:, :B_a].T / t, diag)) / 2`` when
    ``symmetric`` (the second term scores each second-side item against all
    first-side items), else only the first term. With
    ``learnable_temperature`` the log inverse temperature is a parameter,
    initialised at ``log(1 / temperature)`` and clamped to
    ``[0, log(max_scale)]`` (CLIP clamps the scale at 100).
    """

    citation: ClassVar[str] = (
        "van den Oord, Li & Vinyals (2018). Representation Learning with Contrastive Predictive Coding. "
        "arXiv:1807.03748. Radford et al. (2021). Learning Transferable Visual Models From Natural "
        "Language Supervision (CLIP). ICML 2021."
    )

    class Config(ComponentConfig):
        """Options of ``info-nce``."""

        temperature: float = Field(0.07, gt=0, description="softmax temperature (initial value when learnable)")
        learnable_temperature: bool = Field(
            False, description="learn the log inverse temperature, CLIP-style (clamped to [0, log(max_scale)])"
        )
        max_scale: float = Field(
            100.0, ge=1, description="upper clamp of the learnable inverse temperature (CLIP: 100)"
        )
        symmetric: bool = Field(True, description="average the row-wise and column-wise cross-entropies")

        @model_validator(mode="after")
        def _check_initial_scale(self) -> InfoNCELoss.Config:
            if self.learnable_temperature and 1.0 / self.temperature > self.max_scale:
                raise ValueError(
                    f"1 / temperature = {1.0 / self.temperature:g} exceeds max_scale = {self.max_scale:g}; "
                    "raise max_scale or the temperature"
                )
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._max_log_scale = math.log(config.max_scale)
        if config.learnable_temperature:
            self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
        else:
            self.register_parameter("log_inv_temperature", None)

    def scale(self) -> Tensor | float:
        """The current inverse temperature (a tensor with gradient when learnable)."""
        if self.log_inv_temperature is None:
            return 1.0 / self.config.temperature
        return self.log_inv_temperature.clamp(0.0, self._max_log_scale).exp()

    def forward(self, inputs: LossInputs) -> LossOutput:
        """InfoNCE over the alignment's score matrix."""
        scores = inputs.alignment.scores
        n = _check_scores(scores, "info-nce")
        scale = self.scale()
        logits = scores * scale
        targets = torch.arange(n, device=scores.device)
        loss = F.cross_entropy(logits, targets)
        if self.config.symmetric:
            loss = (loss + F.cross_entropy(logits[:, :n].transpose(0, 1), targets)) / 2
        inverse = float(scale.detach()) if isinstance(scale, Tensor) else scale
        logs = {"temperature": 1.0 / inverse, "accuracy": _diagonal_accuracy(scores, n)}
        return LossOutput(loss, logs)


class MultipleNegativesRankingLoss(Loss):
    """sentence-transformers' MultipleNegativesRankingLoss on a score matrix (meant to sit ``on:`` a cosine alignment).

    With the defaults (as in sentence-transformers 6.2: ``directions=("query_to_doc",)``,
    ``partition_mode="joint"``) it is one-directional:
    ``loss = mean_i(logsumexp_j(scale * S[i, j]) - scale * S[i, i])``, i.e.
    cross-entropy of ``scale * S`` with the diagonal as targets. ``scale=20``
    assumes cosine scores in [-1, 1]. ``symmetric: true`` adds the
    document-to-query term per direction (sentence-transformers'
    ``directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"``).
    """

    citation: ClassVar[str] = (
        "Henderson et al. (2017). Efficient Natural Language Response Suggestion for Smart Reply. "
        "arXiv:1705.00652. As sentence-transformers' losses.MultipleNegativesRankingLoss (Reimers & Gurevych, 2019)."
    )

    class Config(ComponentConfig):
        """Options of ``mnrl``."""

        scale: float = Field(20.0, gt=0, description="multiplier of the (cosine) scores: 1 / temperature")
        symmetric: bool = Field(
            False,
            description="also rank queries for each positive document, averaging the two directions' "
            "log-partition terms (sentence-transformers: directions=(query_to_doc, doc_to_query), "
            "partition_mode=per_direction)",
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._checked_range = False

    def _warn_if_not_cosine(self, scores: Tensor) -> None:
        """Warn once when the scores cannot be cosines (the scale assumes [-1, 1])."""
        self._checked_range = True
        bound = float(scores.detach().abs().max()) if scores.numel() else 0.0
        if bound > 1.0 + 1e-3:
            warnings.warn(
                f"mnrl expects cosine scores in [-1, 1] but got |score| up to {bound:.3g}; "
                "put it on: a cosine alignment, or use info-nce for other scores",
                stacklevel=3,
            )

    def forward(self, inputs: LossInputs) -> LossOutput:
        """MNRL over the alignment's score matrix (rows: queries, columns: documents)."""
        scores = inputs.alignment.scores
        n = _check_scores(scores, "mnrl")
        if not self._checked_range:
            self._warn_if_not_cosine(scores)
        logits = scores * self.config.scale
        positives = logits.diagonal()
        log_z = torch.logsumexp(logits, dim=1)
        if self.config.symmetric:
            log_z = (log_z + torch.logsumexp(logits[:, :n].transpose(0, 1), dim=1)) / 2
        loss = -(positives - log_z).mean()
        logs = {
            "accuracy": _diagonal_accuracy(scores, n),
            "positive_score": float(positives.detach().mean()) / self.config.scale,
        }
        return LossOutput(loss, logs)


class CoSENTLoss(Loss):
    """CoSENT on graded pairs: every pair ranked above every lower-rated pair, as sentence-transformers' ``CoSENTLoss``.

    Reads the targets (``LossInputs.targets``: one gold score per example, the
    first column when there are several) and the diagonal of the alignment's
    score matrix, ``s_i = scale * cos(a_i, b_i)``:
    ``loss = log(1 + sum over (i, j) with t_i > t_j of exp(s_j - s_i))``.
    Only the order of the gold scores matters, not their values. ``scale=20``
    assumes cosine scores, as sentence-transformers' default.
    """

    citation: ClassVar[str] = (
        "Huang et al. (2024). CoSENT: Consistent Sentence Embedding via Similarity Ranking. "
        "IEEE/ACM TASLP, doi:10.1109/TASLP.2024.3402087. As sentence-transformers' losses.CoSENTLoss."
    )
    needs_targets: ClassVar[bool] = True

    class Config(ComponentConfig):
        """Options of ``cosent``."""

        scale: float = Field(20.0, gt=0, description="multiplier of the (cosine) pair scores: 1 / temperature")

    config: Config

    def forward(self, inputs: LossInputs) -> LossOutput:
        """CoSENT over the pair scores (the diagonal) and the targets."""
        scores = inputs.alignment.scores
        n = _check_scores(scores, "cosent")
        if inputs.targets is None:
            raise InputError("cosent needs one gold score per example (the data's target column)")
        targets = inputs.targets if inputs.targets.dim() == 1 else inputs.targets[:, 0]
        if targets.numel() != n:
            raise InputError(f"cosent got {targets.numel()} targets for {n} pairs")
        s = scores.diagonal().float() * self.config.scale
        t = targets.to(s.device).float()
        diff = s[None, :] - s[:, None]  # diff[i, j] = s_j - s_i
        ranked = t[:, None] > t[None, :]  # pair i is rated above pair j
        loss = torch.logsumexp(torch.cat([s.new_zeros(1), diff[ranked]]), dim=0)
        return LossOutput(loss, {"pair_score": float(scores.diagonal().detach().mean())})
