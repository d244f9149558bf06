"""``ernie-gram.ngram-mlm``: ERNIE-Gram's explicit n-gram masked-LM loss.

At every position ``ernie-gram.ngram-mask`` chose (a collapsed n-gram's single ``[MASK]`` or a
masked single token) the model predicts one identity in the joint vocabulary ``⟨V_F, V_N⟩``::

    p(y | z\\M) = softmax([ logits_F ; h · W_Nᵀ + b_N ])      y ∈ V_F ∪ V_N

``logits_F`` are the encoder's own vocabulary logits (``std.hf-lm``'s tied masked-LM head, so the
token half is exactly BERT's), ``h`` its hidden states at that position, ``W_N`` the corruption's
n-gram output embeddings. The loss is the mean cross-entropy over the chosen positions
(``L = −Σ log p(y | z\\M) / M``); with an empty lexicon it is ``BertForMaskedLM``'s loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
from repmix.sdk.lm import IGNORE_INDEX, pick_tower

from repmix_ernie_gram.masking import ERNIE_GRAM_CITATION


class ExplicitNgramMLMLoss(Loss):
    """Cross-entropy over the joint token + n-gram vocabulary at the chosen positions (ERNIE-Gram)."""

    citation: ClassVar[str] = ERNIE_GRAM_CITATION
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """Options of ``ernie-gram.ngram-mlm``."""

        tower: str | None = Field(None, description="tower read (default: the only tower with the targets)")
        logits: str = Field("logits", description="the encoder's vocabulary logits [B, N, |V_F|]")
        hidden: str = Field("token", description="the encoder's hidden states [B, N, H] (the n-gram head's input)")
        targets: str = Field("targets", description="joint-vocabulary targets of ernie-gram.ngram-mask")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        view = pick_tower("ernie-gram.ngram-mlm", config.tower, towers, corrupted=True)
        if view.encoder.causal:
            raise PipelineError(f"ernie-gram.ngram-mlm needs a bidirectional encoder, but tower {view.name!r} "
                                "has a causal decoder", hint="use a masked-LM architecture (model_type: bert)")
        for key, values, what in ((config.logits, "hidden", "vocabulary logits"),
                                  (config.hidden, "hidden", "hidden states")):
            spec = view.granularities.get(key)
            if spec is None or spec.values != values or spec.shape != "sequence":
                raise PipelineError(f"ernie-gram.ngram-mlm reads {what} {view.name}.{key}, which tower "
                                    f"{view.name!r} does not provide",
                                    hint="use an encoder with a masked-LM head (type: std.hf-lm, head: masked)")
        spec = view.granularities.get(config.targets)
        if view.corruptor is not None and view.corruptor.rsplit(".", 1)[-1] != "ngram-mask":
            raise PipelineError(
                f"ernie-gram.ngram-mlm reads joint token + n-gram targets, but tower {view.name!r} is corrupted by "
                f"{view.corruptor}, which emits none",
                hint="use corruption: {type: ernie-gram.ngram-mask, train_on: {...}}",
            )
        if spec is None or spec.values != "ids":
            raise PipelineError(
                f"ernie-gram.ngram-mlm reads targets {view.name}.{config.targets}, but tower {view.name!r} has no "
                "corruption that emits them",
                hint="add corruption: {type: ernie-gram.ngram-mask, train_on: {...}} to the tower",
            )

    def _tower(self, inputs: LossInputs) -> tuple[str, Encoded]:
        if self.config.tower is not None:
            if self.config.tower not in inputs.outputs:
                raise InputError(f"ernie-gram.ngram-mlm: no output of tower {self.config.tower!r}")
            return self.config.tower, inputs.outputs[self.config.tower]
        for name, enc in inputs.outputs.items():
            if self.config.targets in enc:
                return name, enc
        raise InputError(f"ernie-gram.ngram-mlm: no tower output holds {self.config.targets!r} "
                         "(the towers were encoded without their ernie-gram.ngram-mask corruption)")

    @staticmethod
    def _masking(inputs: LossInputs, tower: str) -> Any:
        t = inputs.towers.get(tower) if inputs.towers else None
        corr = getattr(t, "corruptor", None)
        if corr is None or not callable(getattr(corr, "ngram_logits", None)):
            raise InputError(f"ernie-gram.ngram-mlm needs tower {tower!r} to have an ernie-gram.ngram-mask "
                             "corruption (it holds the n-gram output embeddings)")
        return corr

    def forward(self, inputs: LossInputs) -> LossOutput:
        name, enc = self._tower(inputs)
        corr = self._masking(inputs, name)
        for key in (self.config.logits, self.config.hidden, self.config.targets):
            if key not in enc:
                raise InputError(f"ernie-gram.ngram-mlm: tower {name!r} has no {key!r} granularity")
        targets = enc[self.config.targets].hidden
        sel = targets != IGNORE_INDEX
        n = int(sel.sum())
        logits_f = enc[self.config.logits].hidden
        if n == 0:
            return LossOutput(logits_f.sum() * 0.0, {"targets": 0.0})
        vocab = int(logits_f.shape[-1])
        if vocab != int(corr.vocab_size):
            raise InputError(f"the encoder predicts {vocab} token ids but the n-gram ids start at the tokenizer's "
                             f"vocabulary size {corr.vocab_size}", hint="use the tower's own tokenizer vocabulary")
        joint = torch.cat([logits_f[sel].float(), corr.ngram_logits(enc[self.config.hidden].hidden[sel]).float()], -1)
        y = targets[sel]
        value = F.cross_entropy(joint, y)
        with torch.no_grad():
            hit = joint.argmax(-1) == y
            is_ngram = y >= vocab
            logs = {"accuracy": float(hit.float().mean()), "targets": float(n),
                    "ngram_share": float(is_ngram.float().mean())}
            if bool(is_ngram.any()):
                logs["ngram_accuracy"] = float(hit[is_ngram].float().mean())
        return LossOutput(value, logs)
