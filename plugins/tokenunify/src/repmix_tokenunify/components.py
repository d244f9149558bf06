"""``tokenunify.mixture`` (corruptor) and ``tokenunify.mixture-lm`` (loss): TokenUnify's mixture
token prediction over text, on an unchanged bidirectional LM encoder (``std.hf-lm``).

The corruptor gives each training row one sub-objective — drawn from the ``mixture`` weights
(``schedule: sample``) or switched deterministically every ``period`` batches
(``schedule: alternate``) — and builds its input and targets (:mod:`repmix_tokenunify.targets`):

* ``random``: each candidate token with probability ``rate``, replaced 80/10/10 as BERT
  (exactly ``std.mlm-mask`` with ``scheme: token`` when the mixture is one-hot) ->
  ``random_targets``;
* ``next``: a random prefix kept, the rest blanked (``[MASK]``, or random ids with
  ``fill: random``, the official noise fill) -> ``next_targets`` at the first blanked token;
* ``next_all``: the same input -> ``next_all_targets`` at every blanked token.

The loss is ``Σ_k weight_k · CE_k``, ``CE_k`` the mean cross-entropy of the encoder's
vocabulary logits over objective ``k``'s targets in the batch (the official joint mode sums the
reconstruction and next-token losses); an objective without targets in a batch adds nothing.
With a one-hot mixture the loss is that objective's single loss (``BertForMaskedLM``'s loss
with those targets as labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Corruptor,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    Runtime,
    TowerView,
)
from repmix.sdk.lm import IGNORE_INDEX, bert_replace, candidate_mask, pick_tower, select_tokens, targets_granularity

from repmix_tokenunify.targets import (
    OBJECTIVES,
    active_objectives,
    alternate_objective,
    prefix_blank,
    row_mask,
    sample_objectives,
    suffix_targets,
)

__all__ = ["TARGETS", "MixtureCorruptor", "MixtureLoss"]

CITATION = (
    "Chen, Y., Shi, H., Liu, X., Shi, T., Zhang, R., Liu, D., Xiong, Z. & Wu, F. (2025). TokenUnify: Scaling Up "
    "Autoregressive Pretraining for Neuron Segmentation (Mixture Token Prediction). ICCV 2025 (arXiv 2405.16847)."
)
#: The target granularity of each sub-objective.
TARGETS = {"random": "random_targets", "next": "next_targets", "next_all": "next_all_targets"}


def _check_weights(value: dict[str, float], what: str) -> dict[str, float]:
    unknown = sorted(set(value) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"{what}: unknown objective {unknown[0]!r}; allowed: {', '.join(OBJECTIVES)}")
    bad = [k for k, v in value.items() if not v >= 0 or v == float("inf")]
    if bad:
        raise ValueError(f"{what}: weight of {bad[0]!r} must be a finite number >= 0, got {value[bad[0]]}")
    full = {k: float(value.get(k, 0.0)) for k in OBJECTIVES}
    if not active_objectives(full):
        raise ValueError(f"{what}: at least one objective needs a positive weight")
    return full


class MixtureCorruptor(Corruptor):
    """TokenUnify's mixture of random, next and next-all token prediction: per-row inputs and targets."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``tokenunify.mixture``."""

        mixture: dict[str, float] = Field(
            default_factory=lambda: {"random": 1.0, "next": 1.0, "next_all": 1.0},
            description="relative weight of each objective (random, next, next_all): the share of rows "
            "(schedule sample) or the objectives cycled through (alternate, weights > 0)",
        )
        schedule: Literal["sample", "alternate"] = Field(
            "sample", description="sample: each row draws its objective from the mixture (seeded); "
            "alternate: the whole batch switches objective every `period` batches (deterministic)"
        )
        period: int = Field(100, ge=1, description="alternate: batches per phase")
        rate: float = Field(0.15, gt=0, lt=1, description="random: probability of each candidate token")
        mask_prob: float = Field(0.8, ge=0, le=1, description="random: share of chosen positions replaced by [MASK]")
        random_prob: float = Field(0.1, ge=0, le=1, description="random: share replaced by a random token")
        fill: Literal["mask", "random"] = Field(
            "mask", description="next / next_all: blanked suffix tokens become [MASK] (the official zero fill) "
            "or uniformly random ids (the official noise fill)"
        )
        min_prefix: int = Field(1, ge=1, description="next / next_all: fewest leading tokens kept")

        @field_validator("mixture")
        @classmethod
        def _mixture(cls, value: dict[str, float]) -> dict[str, float]:
            return _check_weights(value, "mixture")

        @model_validator(mode="after")
        def _check(self) -> MixtureCorruptor.Config:
            if self.mask_prob + self.random_prob > 1 + 1e-9:
                raise ValueError(f"mask_prob + random_prob must be at most 1, got {self.mask_prob + self.random_prob:g}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> dict[str, GranularitySpec]:
        return {name: GranularitySpec("sequence", None, values="ids") for name in TARGETS.values()}

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        missing = [a for a in ("vocab_size", "mask_token_id", "special_ids") if getattr(tok, a, None) is None]
        if tok is None or missing:
            raise ConfigError(
                f"tokenunify.mixture needs a tokenizer with a mask token and a vocabulary "
                f"({', '.join(missing) or 'no tokenizer'} missing)",
                hint="use type: std.lm-tokenizer for the tower",
            )
        self.mask_id = int(tok.mask_token_id)
        self.vocab_size = int(tok.vocab_size)
        self.special_ids = [int(s) for s in tok.special_ids]
        #: training batches corrupted so far (the ``alternate`` phase counter; not saved with the weights)
        self.calls = 0

    def objectives(self, rows: int, generator: torch.Generator | None = None) -> list[str]:
        """The objective of each row of the next batch (advances the ``alternate`` counter)."""
        c = self.config
        if c.schedule == "alternate":
            name = alternate_objective(c.mixture, self.calls, c.period)
            self.calls += 1
            return [name] * rows
        self.calls += 1
        return sample_objectives(c.mixture, rows, generator)

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        c = self.config
        ids = batch["input_ids"]
        cand = candidate_mask(ids, batch.get("attention_mask"), self.special_ids)
        objectives = self.objectives(ids.shape[0], generator)
        random_rows = row_mask(objectives, "random", ids.device)
        next_rows = row_mask(objectives, "next", ids.device)
        all_rows = row_mask(objectives, "next_all", ids.device)
        corrupted = ids
        random_t = torch.full_like(ids, IGNORE_INDEX)
        if bool(random_rows.any()):
            chosen = select_tokens(cand, c.rate, generator) & random_rows[:, None]
            corrupted, random_t = bert_replace(ids, chosen, self.mask_id, self.vocab_size, mask_prob=c.mask_prob,
                                               random_prob=c.random_prob, generator=generator)
        next_t = torch.full_like(ids, IGNORE_INDEX)
        all_t = torch.full_like(ids, IGNORE_INDEX)
        ar_rows = next_rows | all_rows
        if bool(ar_rows.any()):
            blank, first = prefix_blank(cand, ar_rows, c.min_prefix, generator)
            if c.fill == "mask":
                fill = torch.full_like(ids, self.mask_id)
            else:
                fill = torch.randint(self.vocab_size, tuple(ids.shape), generator=generator).to(ids.device)
            corrupted = torch.where(blank, fill, corrupted)
            next_t = suffix_targets(ids, first & next_rows[:, None])
            all_t = suffix_targets(ids, blank & all_rows[:, None])
        out = dict(batch)
        out["input_ids"] = corrupted
        return out, {TARGETS["random"]: targets_granularity(random_t), TARGETS["next"]: targets_granularity(next_t),
                     TARGETS["next_all"]: targets_granularity(all_t)}


class MixtureLoss(Loss):
    """Σ_k weight_k · (mean cross-entropy over objective k's targets): TokenUnify's mixture loss."""

    citation: ClassVar[str] = CITATION
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """Options of ``tokenunify.mixture-lm``."""

        tower: str | None = Field(None, description="tower whose granularities are read (default: the only one with logits)")
        logits: str = Field("logits", description="granularity of vocabulary logits [B, N, V]")
        weights: dict[str, float] = Field(
            default_factory=lambda: {"random": 1.0, "next": 1.0, "next_all": 1.0},
            description="weight of each objective's mean cross-entropy in the sum (random, next, next_all)",
        )

        @field_validator("weights")
        @classmethod
        def _weights(cls, value: dict[str, float]) -> dict[str, float]:
            return _check_weights(value, "weights")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        view = pick_tower("tokenunify.mixture-lm", config.tower, towers, provides=config.logits,
                          hint="name the tower (tower: text) and use hf-lm as its encoder")
        if view.encoder.causal:
            raise PipelineError(
                f"tokenunify.mixture-lm needs a bidirectional encoder, but tower {view.name!r} has a causal decoder "
                "(random token prediction reads context on both sides of a masked token)",
                hint="use a masked-LM architecture (model_type: bert, head: masked)",
            )
        spec = view.granularities.get(config.logits)
        if spec is None or spec.values != "hidden" or spec.shape != "sequence":
            raise PipelineError(f"tokenunify.mixture-lm reads vocabulary logits {view.name}.{config.logits}, "
                                f"which tower {view.name!r} does not provide", hint="use an encoder with an LM head (hf-lm)")
        for k in active_objectives(config.weights):
            spec = view.granularities.get(TARGETS[k])
            if spec is None or spec.values != "ids":
                raise PipelineError(
                    f"tokenunify.mixture-lm reads {view.name}.{TARGETS[k]}, but tower {view.name!r} has no "
                    "corruption that emits it",
                    hint="add corruption: {type: tokenunify.mixture} to the tower",
                )

    def _outputs(self, inputs: LossInputs) -> Encoded:
        if self.config.tower is not None:
            return inputs.outputs[self.config.tower]
        for enc in inputs.outputs.values():
            if self.config.logits in enc:
                return enc
        raise InputError(f"no tower output holds {self.config.logits!r}")

    def forward(self, inputs: LossInputs) -> LossOutput:
        enc = self._outputs(inputs)
        logits = enc[self.config.logits].hidden
        flat_l = logits.reshape(-1, logits.shape[-1])
        targets = {k: enc[TARGETS[k]].hidden.reshape(-1) for k in OBJECTIVES
                   if self.config.weights[k] > 0 and TARGETS[k] in enc}
        metrics: dict[str, float] = {}
        union = None
        for k, t in targets.items():
            sel = t != IGNORE_INDEX
            metrics[f"{k}_targets"] = float(int(sel.sum()))
            union = sel if union is None else union | sel
        if union is None or not bool(union.any()):
            return LossOutput(logits.sum() * 0.0, metrics)  # nothing to predict: a zero that keeps the graph
        # one gather and one log-softmax over the union of every objective's predicted positions
        logp = torch.log_softmax(flat_l[union].float(), dim=-1)
        total = logp.new_zeros(())
        for k, t in targets.items():
            t_u = t[union]
            sel = t_u != IGNORE_INDEX
            if not bool(sel.any()):
                continue
            lp = logp[sel]
            ce = -lp.gather(1, t_u[sel][:, None]).mean()  # = F.cross_entropy(logits, t, ignore_index=-100)
            total = total + self.config.weights[k] * ce
            with torch.no_grad():
                metrics[f"{k}_loss"] = float(ce)
                metrics[f"{k}_accuracy"] = float((lp.argmax(-1) == t_u[sel]).float().mean())
        return LossOutput(total, metrics)
