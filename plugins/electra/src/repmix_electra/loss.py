"""``electra.rtd``: ELECTRA's replaced-token-detection loss (the discriminator's).

``L_D = Σ_t BCE(D_t, r_t)·m_t / Σ_t m_t`` over every real (non-padding) position ``t`` of the
discriminator's input, special tokens included, with ``r_t`` the corruptor's ``replaced`` label
(0 outside the chosen positions) — the loss of transformers' ``ElectraForPreTraining(labels=r,
attention_mask=m)`` and of the official ``_get_discriminator_output``. ELECTRA's total objective
is ``L_MLM + 50·L_D``: write ``weight: 50`` on this loss's block and add ``std.masked-lm`` on the
generator's logits with weight 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    Encoded,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    TowerView,
)
from repmix.sdk.lm import pick_tower

from repmix_electra.discriminator import ELECTRA_CITATION


class ReplacedTokenDetectionLoss(Loss):
    """Mean binary cross-entropy of the discriminator's per-token logits against the ``replaced`` labels."""

    citation: ClassVar[str] = ELECTRA_CITATION
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """Options of ``electra.rtd``."""

        tower: str | None = Field(None, description="tower read (default: the only tower with the logits)")
        logits: str = Field("rtd_logits", description="the discriminator's per-token logits [B, N, 1]")
        labels: str = Field("replaced", description="ids granularity of replaced-token labels (the corruption's)")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        view = pick_tower("electra.rtd", config.tower, towers, provides=config.logits,
                          hint="use encoder: {type: electra.discriminator, ...}")
        spec = view.granularities.get(config.logits)
        if spec is None or spec.values != "hidden" or spec.shape != "sequence":
            raise PipelineError(
                f"electra.rtd reads per-token logits {view.name}.{config.logits}, which tower {view.name!r} "
                "does not provide", hint="use encoder: {type: electra.discriminator, ...}",
            )
        labels = view.granularities.get(config.labels)
        if labels is None or labels.values != "ids":
            raise PipelineError(
                f"electra.rtd reads replaced-token labels {view.name}.{config.labels}, but tower {view.name!r} "
                "has no corruption that emits them",
                hint="add corruption: {type: electra.generator, rate: 0.15} to the tower",
            )

    def _outputs(self, inputs: LossInputs) -> Encoded:
        if self.config.tower is not None:
            if self.config.tower not in inputs.outputs:
                raise InputError(f"electra.rtd: no output of tower {self.config.tower!r}")
            return inputs.outputs[self.config.tower]
        for enc in inputs.outputs.values():
            if self.config.logits in enc:
                return enc
        raise InputError(f"electra.rtd: no tower output holds {self.config.logits!r}")

    def forward(self, inputs: LossInputs) -> LossOutput:
        enc = self._outputs(inputs)
        if self.config.labels not in enc:
            raise InputError(f"electra.rtd needs the corruption's {self.config.labels!r} labels: "
                             "the tower was encoded without its electra.generator corruption")
        g = enc[self.config.logits]
        logits = g.hidden
        if logits.dim() == 3:
            logits = logits.squeeze(-1)
        active = g.full_mask()
        lab = enc[self.config.labels]
        if tuple(lab.hidden.shape) != tuple(logits.shape):
            raise InputError(f"electra.rtd: labels {tuple(lab.hidden.shape)} and logits {tuple(logits.shape)} "
                             "differ in shape")
        labels = lab.hidden.masked_fill(~lab.full_mask(), 0).to(logits.dtype)
        x, y = logits[active].float(), labels[active].float()
        if x.numel() == 0:
            return LossOutput(logits.sum() * 0.0, {"tokens": 0.0})
        value = F.binary_cross_entropy_with_logits(x, y)
        with torch.no_grad():
            pred = x > 0
            truth = y > 0.5
            logs = {"accuracy": float((pred == truth).float().mean()), "replaced": float(truth.float().mean()),
                    "tokens": float(x.numel())}
            if bool(truth.any()):
                logs["recall"] = float(pred[truth].float().mean())
        return LossOutput(value, logs)
