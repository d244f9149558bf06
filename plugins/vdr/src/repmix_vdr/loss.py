"""``vdr.vdr-nll``: VDR's symmetric in-batch NLL (official ``compute_vdr_loss``, ``sym_loss``).

With ``q`` [B, V'] the query vocabulary vectors and ``p`` [N, V'] the passages' (N = B, or more
with hard negatives; the positive of query i is passage i)::

    L_sym(x, y) = ½ (CE_rows(x yᵀ / τ) + CE_cols(x y[:B]ᵀ / τ))
    L = ½ [ L_sym(q_topk, p) + L_sym(q_bow, p) ]                                  (semi: false)
    L = ¼ [ L_sym(q_topk, p) + L_sym(q, p_topk) + L_sym(q_bow, p) + L_sym(q, p_bow) ]   (semi: true)

``x_topk`` keeps x's k largest entries; ``x_bow = x ⊙ bow(x's input)``, the entries of the words
present in the text (the encoder's ``bow`` granularity of that tower). Scores are recomputed with
the alignment's own aligner on the sparsified vectors (``inputs.realign``), so declare the loss on a
dot-product alignment (``vdr.sparse-dot`` or ``std.dot``) as VDR does. ``bow: null`` drops the
bag-of-words terms (then L = L_sym(q_topk, p), or the two top-k terms with ``semi``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from repmix.sdk import (
    AlignmentView,
    ComponentConfig,
    Granularity,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    Runtime,
)
from repmix_vdr import CITATION
from repmix_vdr.sparse import topk_sparsify


def symmetric_nll(scores: Tensor, temperature: float = 1.0) -> Tensor:
    """``½(CE_rows + CE_cols)`` with positives on the diagonal; columns over the first B passages."""
    b = scores.shape[0]
    labels = torch.arange(b, device=scores.device)
    logits = scores / temperature
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :b].T, labels))


class VdrNllLoss(Loss):
    """VDR's symmetric NLL over top-k and bag-of-words sparsified queries (see the module docstring)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``vdr.vdr-nll``."""

        k: int = Field(768, ge=1, description="entries kept by the top-k sparsification (VDR: 768)")
        semi: bool = Field(False, description="the four-term semi-parametric variant (VDR's semi=True)")
        temperature: float = Field(1.0, gt=0, description="softmax temperature of the dot-product logits (VDR: 1)")
        bow: str | None = Field(
            "bow", description="the towers' bag-of-words granularity (vdr-transformer: bow); null drops the BoW terms"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    @classmethod
    def check_alignments(cls, config: ComponentConfig, views: Mapping[str, AlignmentView]) -> None:
        assert isinstance(config, cls.Config)
        for name, view in views.items():
            for (tower, gran), spec in zip(view.sides, view.specs, strict=True):
                if spec.shape != "pooled":
                    raise PipelineError(f"vdr-nll needs pooled vocabulary vectors; {tower}.{gran} is a sequence")
            if view.width is not None and config.k > view.width:
                raise PipelineError(
                    f"k {config.k} exceeds the width {view.width} alignment {name!r} reads",
                    hint=f"use a k of at most {view.width}",
                )
            if config.bow is not None:
                for (tower, _), enc in zip(view.sides, view.encoders, strict=True):
                    if config.bow not in enc.granularities:
                        raise PipelineError(
                            f"vdr-nll reads the bag-of-words granularity {config.bow!r} of tower {tower!r}, "
                            "whose encoder does not provide it",
                            found=config.bow,
                            allowed=sorted(enc.granularities),
                            hint="use the vdr.vdr-transformer encoder, or bow: null",
                        )

    def _bow(self, inputs: LossInputs, tower: str, like: Tensor) -> Tensor:
        assert self.config.bow is not None
        encoded = inputs.outputs.get(tower)
        if encoded is None or self.config.bow not in encoded:
            raise InputError(f"vdr-nll: tower {tower!r} carries no bag-of-words granularity {self.config.bow!r}")
        bow = encoded[self.config.bow].hidden
        if bow.shape != like.shape:
            raise InputError(f"vdr-nll: bag of words {tuple(bow.shape)} does not match the vectors {tuple(like.shape)}")
        return like * (bow > 0).to(like.dtype)

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = next(iter(inputs.alignments))
        ga, gb = inputs.sides(name)
        q, p = ga.hidden, gb.hidden
        if q.shape[-1] < self.config.k:
            raise InputError(f"vdr-nll: k {self.config.k} exceeds the vector width {q.shape[-1]}")
        (tq, _), (tp, _) = inputs.between[name]
        tau = self.config.temperature

        def sym(x: Tensor, y: Tensor) -> Tensor:
            return symmetric_nll(inputs.realign(name, Granularity(x), Granularity(y)).scores, tau)

        k = self.config.k
        terms = {"topk": sym(topk_sparsify(q, k), p)}
        if self.config.semi:
            terms["p_topk"] = sym(q, topk_sparsify(p, k))
        if self.config.bow is not None:
            terms["bow"] = sym(self._bow(inputs, tq, q), p)
            if self.config.semi:
                terms["p_bow"] = sym(q, self._bow(inputs, tp, p))
        value = torch.stack(list(terms.values())).mean()
        return LossOutput(value, {key: float(t.detach()) for key, t in terms.items()})
