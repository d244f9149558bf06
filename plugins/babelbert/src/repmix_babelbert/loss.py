"""``babelbert.nt-xent``: label-based NT-Xent, as pytorch-metric-learning's ``NTXentLoss``.

BabelBERT trains with ``NTXentLoss(temperature=0.07, distance=CosineSimilarity())`` on word
embeddings labelled by their synset. With ``s_ij`` the cosine of items i and j of the batch::

    ℓ(a, p) = -log( exp(s_ap/τ) / (exp(s_ap/τ) + Σ_{n: y_n ≠ y_a} exp(s_an/τ)) )
    L = mean over every ordered positive pair (a, p), a ≠ p, y_a = y_p

(0 when the batch holds no positive pair). In repmix the batch is the two sides of the alignment
the loss is declared on (e.g. a word and a synonym from ``babelbert.synonym-pairs``), concatenated:
2B items. Their labels are the targets (synset ids) repeated for both sides; without targets,
row i of both sides shares label i (each pair its own class). The alignment's own scores are not
used: NT-Xent needs the similarities within each side too.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from repmix.sdk import ComponentConfig, InputError, Loss, LossInputs, LossOutput, Runtime
from repmix_babelbert import CITATION


def nt_xent(embeddings: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    """Label-based NT-Xent over ``embeddings`` [N, D] with integer ``labels`` [N] (cosine similarity)."""
    x = F.normalize(embeddings, dim=-1)
    sim = (x @ x.T) / temperature
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    if not bool(pos.any()):
        return embeddings.sum() * 0.0  # keeps the graph: every parameter gets a (zero) gradient
    neg = ~same
    a_idx, p_idx = pos.nonzero(as_tuple=True)
    pos_logit = sim[a_idx, p_idx]  # [P]
    neg_logits = sim[a_idx].masked_fill(~neg[a_idx], float("-inf"))  # [P, N]
    logits = torch.cat([pos_logit[:, None], neg_logits], dim=1)
    return (torch.logsumexp(logits, dim=1) - pos_logit).mean()


class NTXentLoss(Loss):
    """Label-based NT-Xent over both sides of one alignment (see the module docstring)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``babelbert.nt-xent``."""

        temperature: float = Field(0.07, gt=0, description="softmax temperature τ (BabelBERT: 0.07)")
        use_targets: bool = Field(
            True, description="label items by the targets (synset ids) when the data has them; else pair i = class i"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = next(iter(inputs.alignments))
        a, b = inputs.sides(name)
        if a.hidden.dim() != 2 or b.hidden.dim() != 2:
            raise InputError("nt-xent needs pooled embeddings on both sides of its alignment")
        if a.hidden.shape[0] != b.hidden.shape[0]:
            raise InputError(f"nt-xent needs paired sides, got {a.hidden.shape[0]} and {b.hidden.shape[0]} items")
        n = a.hidden.shape[0]
        targets = inputs.targets
        if self.config.use_targets and targets is not None:
            if targets.dim() != 1 or targets.shape[0] != n:
                raise InputError(f"nt-xent reads one label per pair, got targets of shape {tuple(targets.shape)}")
            labels = targets.round().long()
        else:
            labels = torch.arange(n, device=a.hidden.device)
        emb = torch.cat([a.hidden, b.hidden], dim=0)
        all_labels = torch.cat([labels, labels]).to(emb.device)
        value = nt_xent(emb, all_labels, self.config.temperature)
        pairs = int(((all_labels[:, None] == all_labels[None, :]).sum() - len(all_labels)).item())
        return LossOutput(value, {"positive_pairs": float(pairs)})
