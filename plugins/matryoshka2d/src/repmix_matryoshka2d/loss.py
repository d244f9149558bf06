"""``matryoshka2d``: the 2D Matryoshka loss modifier (layers x dimensions) around any base loss.

Written out, for the alignment ``S`` the loss is declared ``on`` (sides ``a`` and ``b``,
e.g. ``query.sentence`` and ``document.sentence``), with ``e^l`` the sides re-pooled from
hidden state ``l`` (``l = N-1`` is the tower's own output) and ``e[:d]`` the first ``d``
coordinates L2-normalised::

    MRL(l)  = sum_{d in D_step} w_d * base(realign(S, a^l[:d], b^l[:d]))
    loss    = last_layer_weight * MRL(N-1)
            + prior_layers_weight * sum_{l in L_step} layer_weight(l) * MRL(l) / |L_step|
            + kl_weight * sum_{l in L_step} KL(softmax(e^{N-1} / T) || softmax(e^l / T)) * T * kl_scale(l)

``e = [a; b]`` stacks both sides' full-width embeddings (sentence-transformers concatenates
every input column); the KL is ``F.kl_div(log_softmax(e^l/T), softmax(e^{N-1}/T), "batchmean")``
with the last layer (the teacher) **detached**. ``D_step`` / ``L_step`` are
``n_dims_per_step`` / ``n_layers_per_step`` sampled dims / prior layers (all with -1),
drawn from torch's global generator, so runs are reproducible from the seed. In eval mode
nothing is sampled: every dim and layer is used, weighted so that the value is the exact
expectation of the training-time estimator (deterministic validation losses).

This is sentence-transformers' ``Matryoshka2dLoss`` (= ``AdaptiveLayerLoss`` around
``MatryoshkaLoss``), which tests/test_faithful_sentence_transformers.py checks value for
value; the options ``layer_weighting: inverse``, ``prior_layers: transformer`` and
``kl_layer_scaling: log`` give the 2DMSE paper code's (AnglE's) weighting instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    AlignmentView,
    ComponentConfig,
    ConfigError,
    Encoded,
    Granularity,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    Runtime,
)
from torch import Tensor

from repmix_matryoshka2d import CITATION
from repmix_matryoshka2d.layers import layer_count, repool
from repmix_matryoshka2d.poolers import shrink

LayerWeighting = Literal["uniform", "log", "linear", "inverse"]


def layer_weight(scheme: LayerWeighting, layer: int) -> float:
    """Weight of prior layer ``layer`` (hidden-state index, 0 = embedding output).

    ``uniform``: 1 (sentence-transformers' default, the 2DMSE and Starbucks papers);
    ``log``: 1 / (1 + ln(1 + l)) (ESE); ``linear``: 1 / (1 + l) (sentence-transformers
    before ``layer_weighting`` existed); ``inverse``: 1 / l (AnglE's 2DMSE trainer, l >= 1).
    """
    if scheme == "uniform":
        return 1.0
    if scheme == "log":
        return 1.0 / (1.0 + math.log(1 + layer))
    if scheme == "linear":
        return 1.0 / (1 + layer)
    if layer < 1:
        raise InputError("layer_weighting 'inverse' divides by the layer number and cannot weight layer 0")
    return 1.0 / layer


def _sample(n: int, k: int, training: bool) -> tuple[list[int], float]:
    """Indices of ``k`` of ``range(n)`` (all when ``k`` is -1 or >= n), ascending, and a scale factor.

    In training mode the ``k`` are drawn from torch's global generator and the scale is 1.
    In eval mode nothing is drawn: all ``n`` are returned with the scale ``k / n``, so a
    sum over them is the exact expectation of the training-time sum over ``k`` draws
    (and a repeated evaluation gives the same value).
    """
    if k < 0 or k >= n:
        return list(range(n)), 1.0
    if not training:
        return list(range(n)), k / n
    return sorted(torch.randperm(n)[:k].tolist()), 1.0


def _with(encoded: Encoded, name: str, g: Granularity) -> Encoded:
    """A shallow copy of ``encoded`` with granularity ``name`` replaced."""
    return Encoded({**encoded.granularities, name: g}, encoded.layers, encoded.layers_of, encoded.extras)


class Matryoshka2dLoss(Loss):
    """2D Matryoshka Sentence Embeddings: a base loss over truncated dims x (last + sampled shallower layers) + KL."""

    citation: ClassVar[str] = CITATION + (
        " Computed as sentence-transformers' Matryoshka2dLoss (AdaptiveLayerLoss + MatryoshkaLoss; "
        "Kusupati et al. (2022), Matryoshka Representation Learning, NeurIPS 2022)."
    )
    num_alignments: ClassVar[int | None] = 1

    class Config(ComponentConfig):
        """Options of ``matryoshka2d``."""

        base: dict[str, Any] = Field(
            description="the wrapped loss block, e.g. {type: mnrl}; validated and built by repmix"
        )
        dims: list[int] = Field(min_length=1, description="embedding widths to train, e.g. [384, 256, 128, 64, 32]")
        dim_weights: list[float] | None = Field(None, description="weight of each dim (default: 1 each)")
        n_dims_per_step: int = Field(1, ge=-1, description="dims sampled per layer and step; -1 = all")
        n_layers_per_step: int = Field(
            1, ge=-1, description="prior layers sampled per step; -1 = all, 0 = none (plain 1D Matryoshka)"
        )
        prior_layers: Literal["all", "transformer"] | list[int] = Field(
            "all",
            description="candidate shallower layers (hidden-state indices): 'all' = 0..N-2 incl. the embedding "
            "output (sentence-transformers), 'transformer' = 1..N-2 (AnglE), or an explicit list",
        )
        layer_weighting: LayerWeighting = Field(
            "uniform", description="weight of a prior layer's loss: uniform, log, linear (1/(1+l)) or inverse (1/l)"
        )
        last_layer_weight: float = Field(1.0, ge=0, description="weight of the last layer's loss")
        prior_layers_weight: float = Field(1.0, ge=0, description="weight of the (averaged) prior layers' losses")
        kl_weight: float = Field(1.0, ge=0, description="weight of the KL term")
        kl_temperature: float = Field(0.3, ge=0, description="softmax temperature T of the KL term; 0 disables it")
        kl_layer_scaling: Literal["none", "log"] = Field(
            "none", description="extra KL factor per layer: none, or log(2 + l) as AnglE's trainer"
        )
        normalize: bool = Field(True, description="L2-normalise after truncating (sentence-transformers 6 shrink)")

        @field_validator("dims")
        @classmethod
        def _check_dims(cls, value: list[int]) -> list[int]:
            if any(d < 1 for d in value):
                raise ValueError("every dim must be at least 1")
            if len(set(value)) != len(value):
                raise ValueError(f"dims must be distinct, got {value}")
            return value

        @field_validator("prior_layers")
        @classmethod
        def _check_layers(cls, value: Any) -> Any:
            if isinstance(value, list):
                if not value:
                    raise ValueError("prior_layers must name at least one layer (or use n_layers_per_step: 0)")
                if any(layer < 0 for layer in value) or len(set(value)) != len(value):
                    raise ValueError("prior_layers must be distinct hidden-state indices >= 0")
            return value

        @model_validator(mode="after")
        def _consistent(self) -> Matryoshka2dLoss.Config:
            if self.dim_weights is not None and len(self.dim_weights) != len(self.dims):
                raise ValueError(f"dim_weights has {len(self.dim_weights)} entries but dims has {len(self.dims)}")
            if self.n_dims_per_step == 0:
                raise ValueError("n_dims_per_step must be -1 (all) or at least 1")
            if self.layer_weighting == "inverse" and (
                self.prior_layers == "all" or (isinstance(self.prior_layers, list) and 0 in self.prior_layers)
            ):
                raise ValueError(
                    "layer_weighting 'inverse' divides by the layer number: use prior_layers: transformer "
                    "(or a list without 0)"
                )
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: ComponentConfig) -> dict[str, tuple[str, dict[str, Any]]]:
        """The base loss block, planned and built by repmix."""
        assert isinstance(config, cls.Config)
        return {"base": ("loss", dict(config.base))}

    @classmethod
    def signature(cls, config: ComponentConfig, on: Any) -> None:
        """One alignment; the base loss must read exactly that one alignment (it is re-scored per dim and layer)."""
        super().signature(config, on)
        assert isinstance(config, cls.Config)
        base = _build_base(config.base)
        base_cls = type(base)
        type_name = config.base.get("type")
        if base_cls.num_alignments == 0:
            raise PipelineError(
                f"matryoshka2d re-scores its base loss on truncated, re-pooled embeddings through the alignment "
                f"it is declared on, but the base loss {type_name!r} reads no alignment",
                found=type_name,
                hint="wrap a loss over an alignment's scores (e.g. mnrl, info-nce)",
            )
        try:
            base_cls.signature(base.config, list(on))
        except ConfigError as err:
            raise PipelineError(
                f"matryoshka2d hands its base loss {type_name!r} the one alignment {next(iter(on))!r}, "
                f"which the base loss does not accept: {err.message}",
                found=type_name,
            ) from None

    @classmethod
    def check_alignments(cls, config: ComponentConfig, views: Mapping[str, AlignmentView]) -> None:
        """Check ``dims``, ``prior_layers`` and the per-layer states against the alignment's sides.

        Raises :class:`PipelineError` at ``repmix check`` time for: a dim wider than the
        embeddings the alignment reads; prior layers requested (``n_layers_per_step`` not 0)
        from a tower whose encoder exposes no per-layer states; an explicit ``prior_layers``
        index not below the last hidden state; and prior layers of a granularity that no
        pooler produces (it cannot be re-pooled per layer). The same mistakes raise an
        :class:`InputError` at the first forward for a loss built without the planner's check.
        """
        assert isinstance(config, cls.Config)
        for name, view in views.items():
            sides = " and ".join(f"{t}.{g}" for t, g in view.sides)
            width = view.width
            too_wide = sorted(d for d in config.dims if width is not None and d > width)
            if too_wide:
                raise PipelineError(
                    f"matryoshka2d dims {too_wide} exceed the width {width} of the embeddings alignment "
                    f"{name!r} reads ({sides})",
                    found=too_wide,
                    hint=f"use dims of at most {width}",
                )
            if config.n_layers_per_step == 0:
                continue
            for (tower, gran), sig in zip(view.sides, view.encoders):
                if not sig.num_layers:
                    raise PipelineError(
                        f"matryoshka2d re-pools {tower}.{gran} from prior layers (n_layers_per_step: "
                        f"{config.n_layers_per_step}), but the encoder of tower {tower!r} exposes no per-layer "
                        "hidden states",
                        hint="use an encoder that exposes them (e.g. hf-transformer), or set n_layers_per_step: 0 "
                        "for plain (1D) Matryoshka over dims only",
                    )
            # As at run time: the fewer hidden states of the two sides (embedding output included).
            states = min(int(sig.num_layers or 0) for sig in view.encoders)
            last = states - 1
            if isinstance(config.prior_layers, list):
                bad = sorted(layer for layer in config.prior_layers if layer >= last)
                if bad:
                    raise PipelineError(
                        f"matryoshka2d prior_layers {bad} are not below the last layer: the towers of alignment "
                        f"{name!r} ({sides}) have {states} hidden states (0 = embedding output, {last} = last layer)",
                        found=bad,
                        hint=f"use prior layers from 0 to {last - 1}, or prior_layers: all"
                        if last > 0
                        else "set n_layers_per_step: 0",
                    )
                has_candidates = True
            else:
                has_candidates = last >= (1 if config.prior_layers == "all" else 2)
            for (tower, gran), sig in zip(view.sides, view.encoders):
                if has_candidates and gran in sig.granularities:
                    raise PipelineError(
                        f"matryoshka2d re-pools {tower}.{gran} from prior layers, but {gran!r} is produced by the "
                        "encoder, not by a pooler, so it cannot be re-pooled per layer",
                        hint="align a pooled granularity (e.g. poolers: {sentence: {type: mean}}), or set "
                        "n_layers_per_step: 0",
                    )
        base = _build_base(config.base)
        type(base).check_alignments(base.config, views)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        # Prior layers are re-pooled from Encoded.layers: the model asks the encoders for them.
        self.needs_layers = self.config.n_layers_per_step != 0
        base = runtime.nested.get("base")
        if not isinstance(base, Loss):
            raise ConfigError("matryoshka2d needs its base loss built by repmix (runtime.nested['base'])")
        self.base = base
        weights = self.config.dim_weights or [1.0] * len(self.config.dims)
        pairs = sorted(zip(self.config.dims, weights), key=lambda p: -p[0])  # widest first, as sentence-transformers
        self.dims = [d for d, _ in pairs]
        self.dim_weights = [w for _, w in pairs]

    # ------------------------------------------------------------------ pieces
    def candidate_layers(self, num_states: int) -> list[int]:
        """Prior-layer candidates for an encoder with ``num_states`` hidden states (embedding output included)."""
        last = num_states - 1
        choice = self.config.prior_layers
        if choice == "all":
            return list(range(last))
        if choice == "transformer":
            return list(range(1, last))
        assert isinstance(choice, list)
        bad = [layer for layer in choice if layer >= last]
        if bad:
            raise InputError(
                f"matryoshka2d prior_layers {bad} are not below the last layer: the encoder has {num_states} "
                f"hidden states (0 = embedding output, {last} = last layer)"
            )
        return list(choice)

    def mrl(self, inputs: LossInputs, name: str, a: Granularity, b: Granularity) -> tuple[Tensor, dict[str, float]]:
        """Base loss summed over (sampled) truncated widths of ``a`` and ``b``, re-scored by the alignment's aligner."""
        (ta, ga), (tb, gb) = inputs.between[name]
        total: Tensor | None = None
        logs: dict[str, float] = {}
        chosen, scale = _sample(len(self.dims), self.config.n_dims_per_step, self.training)
        for i in chosen:
            dim = self.dims[i]
            a_d = Granularity(shrink(a.hidden, dim, self.config.normalize))
            b_d = Granularity(shrink(b.hidden, dim, self.config.normalize))
            outputs = dict(inputs.outputs)
            outputs[ta] = _with(outputs[ta], ga, a_d)
            outputs[tb] = _with(outputs[tb], gb, b_d)
            result = self.base(inputs.narrowed({name: inputs.realign(name, a_d, b_d)}, outputs))
            term = (self.dim_weights[i] * scale) * result.value
            total = term if total is None else total + term
            if not logs:
                logs = dict(result.logs)
        assert total is not None
        return total, logs

    def _check_dims(self, a: Granularity, b: Granularity, name: str) -> None:
        width = min(a.dim, b.dim)
        too_wide = [d for d in self.dims if d > width]
        if too_wide:
            raise InputError(
                f"matryoshka2d dims {too_wide} exceed the width {width} of the embeddings alignment {name!r} reads",
                hint=f"use dims of at most {width}",
            )

    # ----------------------------------------------------------------- forward
    def forward(self, inputs: LossInputs) -> LossOutput:
        """The 2D Matryoshka loss (see the module docstring)."""
        c = self.config
        name = next(iter(inputs.alignments))
        (ta, ga), (tb, gb) = inputs.between[name]
        enc_a, enc_b = inputs.outputs[ta], inputs.outputs[tb]
        last_a, last_b = enc_a[ga], enc_b[gb]
        self._check_dims(last_a, last_b, name)

        last_loss, base_logs = self.mrl(inputs, name, last_a, last_b)
        total = c.last_layer_weight * last_loss
        logs = {f"base.{k}": v for k, v in base_logs.items()}
        logs["last_layer"] = float(last_loss.detach())
        if c.n_layers_per_step == 0:
            return LossOutput(total, logs)

        num_states = min(layer_count(enc_a, ta), layer_count(enc_b, tb))
        candidates = self.candidate_layers(num_states)
        if not candidates:
            return LossOutput(total, logs)
        picked, kl_scale = _sample(len(candidates), c.n_layers_per_step, self.training)
        chosen = [candidates[i] for i in picked]
        teacher = None
        if c.kl_temperature > 0:
            # The last layer teaches the shallow ones; it gets no gradient from the KL term.
            teacher = F.softmax(torch.cat([last_a.hidden, last_b.hidden]) / c.kl_temperature, dim=-1).detach()
        prior_total = last_loss.new_zeros(())
        kl_total = last_loss.new_zeros(())
        for layer in chosen:
            a_l = repool(inputs.towers[ta], ta, ga, enc_a, layer)
            b_l = repool(inputs.towers[tb], tb, gb, enc_b, layer)
            layer_loss, _ = self.mrl(inputs, name, a_l, b_l)
            prior_total = prior_total + layer_loss * layer_weight(c.layer_weighting, layer) / len(chosen)
            if teacher is not None:
                student = F.log_softmax(torch.cat([a_l.hidden, b_l.hidden]) / c.kl_temperature, dim=-1)
                kl = F.kl_div(student, teacher, reduction="batchmean") * c.kl_temperature
                if c.kl_layer_scaling == "log":
                    kl = kl * math.log(2 + layer)
                kl_total = kl_total + kl * kl_scale
        total = total + c.prior_layers_weight * prior_total + c.kl_weight * kl_total
        logs["prior_layers"] = float(prior_total.detach())
        logs["kl"] = float(kl_total.detach())
        logs["sampled_layer"] = float(chosen[0])
        return LossOutput(total, logs)


def _build_base(block: dict[str, Any]) -> Loss:
    """Resolve, validate and build the base loss block through repmix (for the static check of ``signature``)."""
    from repmix.sdk import LocatedConfig, build_component

    base = build_component(LocatedConfig({"base": dict(block)}), "loss", dict(block), ("base",))
    if not isinstance(base, Loss):
        raise PipelineError(f"matryoshka2d's base {block.get('type')!r} is not a loss")
    return base
