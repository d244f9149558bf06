"""``dse.dse-distill``: DSE's distillation objective on the pair scores (the alignment's diagonal).

Official code (``dse_trainer.py``): ``L = (1−α)·L_task(y_pred, y) + α·mean_b Σ_c (y_pred − z)²``
with α = 0.5; L_task is BCE-with-logits for binary tasks (the teacher's two logits become
``z = z1 − z0``), cross-entropy for multiclass ones and MSE for regression.

Targets (``LossInputs.targets``, from ``dse.distill-pairs``): [B, 2] = (y, z) per pair, or
[B] = z alone (then ``task: none``: pure distillation).
"""

from __future__ import annotations

from typing import ClassVar, Literal

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
from torch import Tensor

from repmix_dse import CITATION


def binary_teacher_logit(logits: Tensor) -> Tensor:
    """A binary teacher's two class logits [..., 2] as DSE's single target ``z = z1 − z0``."""
    if logits.shape[-1] != 2:
        raise InputError(f"a binary teacher gives 2 logits per pair, got {logits.shape[-1]}")
    return logits[..., 1] - logits[..., 0]


def dse_loss(
    y_pred: Tensor, z: Tensor, y: Tensor | None, alpha: float, task: Literal["mse", "bce", "none"]
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(total, distillation term, task term): ``(1−α)·L_task(y_pred, y) + α·mean (y_pred − z)²``."""
    distill = (y_pred - z).pow(2).mean()
    if task == "none":
        return distill, distill, None
    if y is None:
        raise InputError(f"dse-distill with task {task!r} needs task labels y: targets of shape [B, 2] (y, z)")
    if task == "mse":
        task_term = F.mse_loss(y_pred, y)
    else:
        task_term = F.binary_cross_entropy_with_logits(y_pred, y)
    return (1.0 - alpha) * task_term + alpha * distill, distill, task_term


class DSEDistillLoss(Loss):
    """DSE's mixed task + distillation loss on the pair scores ``y_pred = diag(S)``."""

    citation: ClassVar[str] = CITATION
    needs_targets: ClassVar[bool] = True

    class Config(ComponentConfig):
        """Options of ``dse.dse-distill``."""

        alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight α of the distillation term (DSE: 0.5)")
        task: Literal["mse", "bce", "none"] = Field(
            "mse",
            description="task loss on the labels y: mse (regression), bce (binary, y in {0, 1}, scores are "
            "logits) or none (distillation only; targets may then be z alone)",
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, inputs: LossInputs) -> LossOutput:
        """Read (y, z) from the targets and the pair scores from the alignment's diagonal."""
        scores = inputs.alignment.scores
        if scores.dim() != 2 or scores.shape[1] < scores.shape[0]:
            raise InputError(f"dse-distill pairs row i with column i; got scores of shape {tuple(scores.shape)}")
        targets = inputs.targets
        if targets is None:
            raise InputError("dse-distill needs targets: the teacher score z per pair (and the label y), "
                             "e.g. from the dse.distill-pairs dataset")
        n = scores.shape[0]
        targets = targets.to(scores.dtype)
        if targets.shape[0] != n or targets.dim() not in (1, 2) or (targets.dim() == 2 and targets.shape[1] not in (1, 2)):
            raise InputError(
                f"dse-distill needs targets of shape [{n}] (z) or [{n}, 2] (y, z), got {tuple(targets.shape)}"
            )
        if targets.dim() == 2 and targets.shape[1] == 2:
            y, z = targets[:, 0], targets[:, 1]
        else:
            y, z = None, targets.reshape(n)
        y_pred = scores.diagonal()
        total, distill, task_term = dse_loss(y_pred, z, y, self.config.alpha, self.config.task)
        logs = {"distill": float(distill.detach())}
        if task_term is not None:
            logs["task"] = float(task_term.detach())
        return LossOutput(total, logs)
