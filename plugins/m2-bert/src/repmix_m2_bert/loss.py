"""``m2-bert.orthogonal-projection``: M2-BERT's single-sample retrieval fine-tuning loss.

The paper (LoCo, §4) fine-tunes M2-BERT for retrieval with batches of **one** example, where the
usual in-batch-negative losses have no negatives; its "orthogonal projection loss" pushes the
cosine of a query and its relevant document towards 1 and the cosine of a query and a BM25
("strong") negative towards 0. The official code (``bert/src/embeddings/training_functions.py``)
builds ``(q, d⁺, 1.0)`` and ``(q, d⁻, 0.0)`` pairs for sentence-transformers'
``CosineSimilarityLoss``, i.e. for pair ``i`` of a batch::

    ℓ_i = (cos(q_i, d_i) − y_i)²            y_i ∈ {1 (relevant), 0 (negative)}
    L   = mean_i ℓ_i

Each pair's term depends on that pair alone (no in-batch interaction), so the loss of a batch is
exactly the mean of its single-sample losses, and a batch of one is as valid as any other.
Declare it on a cosine alignment (``std.cosine``); it reads the alignment's diagonal (row ``i``
against column ``i``) and the targets (the labels; ``m2-bert.bm25-pairs`` provides them).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from repmix.sdk import ComponentConfig, InputError, Loss, LossInputs, LossOutput, Runtime

CITATION = (
    "Saad-Falcon, Fu, Arora, Guha and Ré (2024). Benchmarking and Building Long-Context Retrieval Models "
    "with LoCo and M2-BERT. ICML 2024. Official code: github.com/HazyResearch/m2 "
    "(bert/src/embeddings/training_functions.py)."
)


def orthogonal_projection_loss(cosines: Tensor, labels: Tensor) -> Tensor:
    """``mean_i (cosines_i − labels_i)²`` for paired cosines [B] and labels [B] (1 relevant, 0 negative)."""
    return (cosines - labels.to(cosines.dtype)).pow(2).mean()


class OrthogonalProjectionLoss(Loss):
    """MSE of each pair's cosine against its label: 1 for a relevant document, 0 for a negative."""

    citation: ClassVar[str] = CITATION
    needs_targets: ClassVar[bool] = True

    class Config(ComponentConfig):
        """Options of ``m2-bert.orthogonal-projection`` (none: the loss has no hyper-parameters)."""

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, inputs: LossInputs) -> LossOutput:
        scores = inputs.alignment.scores
        if scores.dim() != 2 or scores.shape[0] > scores.shape[1]:
            raise InputError(
                f"orthogonal-projection needs a [B, >=B] score matrix pairing row i with column i, got "
                f"{tuple(scores.shape)}"
            )
        targets = inputs.targets
        if targets is None:
            raise InputError("orthogonal-projection needs targets: 1 for a relevant pair, 0 for a negative")
        labels = targets if targets.dim() == 1 else targets[:, 0]
        if labels.shape[0] != scores.shape[0]:
            raise InputError(f"orthogonal-projection got {labels.shape[0]} labels for {scores.shape[0]} pairs")
        cosines = scores.diagonal()
        value = orthogonal_projection_loss(cosines, labels)
        with torch.no_grad():
            pos, neg = labels > 0.5, labels <= 0.5
            logs = {
                "cos_pos": float(cosines[pos].mean()) if bool(pos.any()) else 0.0,
                "cos_neg": float(cosines[neg].mean()) if bool(neg.any()) else 0.0,
            }
        return LossOutput(value, logs)
