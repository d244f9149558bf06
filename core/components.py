"""The component interfaces: tokenizer, encoder, pooler, aligner, loss (+ dataset, evaluator).

A component is a class with

* a nested pydantic ``Config`` (subclass of :class:`ComponentConfig`) that
  validates its YAML block (``extra="forbid"``: unknown keys are errors);
* a ``citation`` string;
* static declarations of what it requires and provides, evaluated from the
  config alone so ``repmix check`` rejects an impossible pipeline before any
  compute (:meth:`Encoder.signature`, :meth:`Pooler.signature`,
  :meth:`Aligner.signature`, :meth:`Loss.signature` and
  :meth:`Loss.check_alignments`);
* ``__init__(config, runtime)``: runtime values such as a pooler's input
  dimension arrive in :class:`Runtime`, injected by the builder, never
  repeated in YAML.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
import torch
from torch import Tensor, nn

from repmix.core.errors import PipelineError
from repmix.core.dataflow import (
    Alignment,
    AlignmentView,
    Encoded,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    LossOutput,
    TowerView,
)

if TYPE_CHECKING:
    from repmix.core.model import AssembledModel


class ComponentConfig(BaseModel):
    """Base class of every component's nested ``Config``. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


@dataclass
class Runtime:
    """Values the builder injects into a component at construction.

    Attributes:
        input: spec of the granularity a pooler reads (its ``dim`` is the input dimension).
        sides: specs of the two granularities an aligner is placed between (for aligners
            with weights, e.g. a bilinear scorer that needs both input dims).
        encoder: signature of the tower's encoder (for poolers).
        tokenizer: the tower's tokenizer instance (for encoders: vocabulary size, padding id).
        load_pretrained: False when weights will be loaded from a saved model right after
            construction, so pretrained checkpoints need not be read twice.
        nested: built nested components by config field name (see
            :meth:`Component.nested_components`), e.g. the base loss of a loss modifier.
        path: dotted YAML path of this component, for error messages.
        tokenizers: each tower's tokenizer by tower name, for datasets that tokenize
            (e.g. ``text-corpus`` packing documents into fixed-length token blocks); the
            engine fills it for the data blocks it trains and evaluates on.
        extras: anything else a builder passes (``extras["encoder"]``: the tower's built
            encoder, for a corruptor that ties weights to it).
    """

    input: GranularitySpec | None = None
    sides: tuple[GranularitySpec, GranularitySpec] | None = None
    encoder: EncoderSignature | None = None
    tokenizer: Tokenizer | None = None
    load_pretrained: bool = True
    nested: dict[str, Component] = field(default_factory=dict)
    path: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    tokenizers: dict[str, Any] = field(default_factory=dict)


class Component(metaclass=ABCMeta):
    """Common base of all component kinds."""

    kind: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig

    config: ComponentConfig

    @classmethod
    def nested_components(cls, config: ComponentConfig) -> dict[str, tuple[str, dict[str, Any]]]:
        """Nested component blocks in ``config``: field name -> (kind, block). Default: none."""
        return {}

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """Files this component read at build time that a saved model must carry.

        Config key -> a file or folder, or a list of files of one folder (the
        folder is recreated with only those, e.g. a tokenizer's files without the
        weights, which are in ``model.safetensors`` already). :func:`repmix.core.artifacts.save_model`
        copies them into the saved directory and points the key at the copy, so
        the saved model loads on a machine without the original files. Default:
        none.
        """
        return {}


class Tokenizer(Component):
    """Raw items (strings, SMILES, ...) -> a batch the encoder understands.

    Not an ``nn.Module`` unless it learns. The batch is a mapping of tensors or
    any object with a ``to(device)`` method.
    """

    kind = "tokenizer"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config

    @abstractmethod
    def __call__(self, items: Sequence[Any]) -> Any:
        """Tokenize a batch of raw items."""

    def check_item(self, item: Any) -> str | None:
        """Return why ``item`` cannot be tokenized, or ``None`` when it can (e.g. bad SMILES)."""
        return None if isinstance(item, str) else f"expected a string, got {type(item).__name__}"

    def sort_key(self, item: Any) -> int:
        """Length proxy used to sort items before batching (less padding). Default: ``len``."""
        try:
            return len(item)
        except TypeError:
            return 0


class Encoder(Component, nn.Module):
    """Tokenizer batch -> :class:`Encoded` (granularities, optional per-layer states)."""

    kind = "encoder"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        nn.Module.__init__(self)
        self.config = config

    @classmethod
    @abstractmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """What this encoder provides under ``config``, without building it."""

    @abstractmethod
    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode a tokenizer batch; fill ``Encoded.layers`` when ``output_layers``."""


class PoolerConfig(ComponentConfig):
    """Options shared by poolers: the granularity read and optional L2 normalisation."""

    source: str = Field("token", description="the granularity this pooler reads (token, or any produced before it)")
    normalize: bool = Field(False, description="L2-normalise the pooled vectors")


class Pooler(Component, nn.Module):
    """:class:`Encoded` -> one more granularity (e.g. ``sentence`` from ``token``)."""

    kind = "pooler"
    Config: ClassVar[type[ComponentConfig]] = PoolerConfig
    #: True when the pooler reads per-layer hidden states (``Encoded.layers``).
    needs_layers: ClassVar[bool] = False
    #: Shape of the source granularity this pooler accepts.
    source_shape: ClassVar[Literal["sequence", "pooled", "any"]] = "sequence"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.input_dim = runtime.input.dim if runtime.input is not None else None

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> GranularitySpec:
        """The produced granularity; raises :class:`PipelineError` when the encoder lacks what is needed."""
        source = getattr(config, "source", "token")
        if source not in encoder.granularities:
            raise PipelineError(
                f"{cls.__name__} reads granularity {source!r}, which the encoder does not provide",
                found=source,
                allowed=sorted(encoder.granularities),
            )
        spec = encoder.granularities[source]
        if cls.source_shape != "any" and spec.shape != cls.source_shape:
            raise PipelineError(
                f"{cls.__name__} needs a {cls.source_shape} granularity, but {source!r} is {spec.shape}"
            )
        if cls.needs_layers and not encoder.num_layers:
            raise PipelineError(
                f"{cls.__name__} needs per-layer hidden states, but the encoder exposes none",
                hint="choose an encoder that exposes per-layer states (e.g. hf-transformer) or another pooler",
            )
        return GranularitySpec("pooled", spec.dim)

    @abstractmethod
    def forward(self, encoded: Encoded) -> Granularity:
        """Produce the pooled granularity from the encoder output."""


ShapeReq = Literal["sequence", "pooled", "any"]


class Aligner(Component, nn.Module):
    """Two granularities -> a score matrix [B_a, B_b] with optional detail."""

    kind = "aligner"
    #: Accepted shapes of the two sides.
    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("pooled", "pooled")

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        nn.Module.__init__(self)
        self.config = config

    @classmethod
    def signature(cls, config: ComponentConfig, a: GranularitySpec, b: GranularitySpec) -> None:
        """Raise :class:`PipelineError` when the two sides cannot be aligned."""
        for side, spec, want in (("first", a, cls.accepts[0]), ("second", b, cls.accepts[1])):
            if want != "any" and spec.shape != want:
                raise PipelineError(
                    f"{cls.__name__} needs a {want} granularity on the {side} side, got a {spec.shape} one"
                )
        if a.dim is not None and b.dim is not None and a.dim != b.dim:
            raise PipelineError(f"{cls.__name__} needs equal dimensions, got {a.dim} and {b.dim}")

    @abstractmethod
    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """Score every item of ``a`` against every item of ``b``."""


@dataclass
class LossInputs:
    """What a loss sees: the alignments it is declared ``on``, the towers' outputs and the targets.

    A loss sees only its own alignments: ``between`` names each one's two sides
    (tower, granularity) and ``aligners`` holds each one's aligner, so a loss can
    re-run it on other granularities (e.g. truncated ones) without the model.
    ``towers`` holds each tower in ``outputs`` (its tokenizer, encoder and poolers),
    for losses that read an encoder's own head (a decoder, a vocabulary
    projection) or re-pool a granularity.
    """

    alignments: dict[str, Alignment]
    outputs: dict[str, Encoded]
    targets: Tensor | None = None
    between: dict[str, tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=dict)
    aligners: Mapping[str, Aligner] = field(default_factory=dict)
    towers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alignment(self) -> Alignment:
        """The first (usually only) alignment the loss is declared on."""
        return next(iter(self.alignments.values()))

    def sides(self, alignment: str) -> tuple[Granularity, Granularity]:
        """The two granularities an alignment is computed between."""
        if alignment not in self.between:
            raise PipelineError(f"this loss is not declared on alignment {alignment!r}")
        (ta, ga), (tb, gb) = self.between[alignment]
        return self.outputs[ta][ga], self.outputs[tb][gb]

    def realign(self, alignment: str, a: Granularity, b: Granularity) -> Alignment:
        """Run the named alignment's aligner on other granularities (e.g. truncated ones)."""
        if alignment not in self.aligners:
            raise PipelineError(f"this loss is not declared on alignment {alignment!r}")
        return self.aligners[alignment](a, b)

    def narrowed(self, alignments: dict[str, Alignment], outputs: dict[str, Encoded]) -> LossInputs:
        """The same inputs with other alignments and outputs (e.g. for a wrapped base loss)."""
        return LossInputs(alignments, outputs, self.targets, self.between, self.aligners, self.towers)


class Loss(Component, nn.Module):
    """Alignments and/or granularities -> scalar + named logs."""

    kind = "loss"
    #: Number of alignments the loss reads through ``on:`` (``None`` = any number ≥ 1; ``0`` = none:
    #: the loss reads tower granularities from ``LossInputs.outputs``, e.g. LM logits and targets,
    #: and checks them in :meth:`check_towers`).
    num_alignments: ClassVar[int | None] = 1
    #: True when the loss needs per-example targets (e.g. gold scores).
    needs_targets: ClassVar[bool] = False
    #: True when the loss reads per-layer states (``Encoded.layers``) of the towers its alignments read:
    #: the model then asks those encoders for every layer in the training forward. An instance may set
    #: it in ``__init__`` when it depends on the config.
    needs_layers: bool = False

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        nn.Module.__init__(self)
        self.config = config

    @classmethod
    def signature(cls, config: ComponentConfig, on: Sequence[str]) -> None:
        """Raise :class:`PipelineError` when ``on`` is not what this loss reads."""
        if cls.num_alignments is not None and len(on) != cls.num_alignments:
            raise PipelineError(
                f"{cls.__name__} reads {cls.num_alignments} alignment(s) through 'on:', got {len(on)}"
            )

    @classmethod
    def check_alignments(cls, config: ComponentConfig, views: Mapping[str, AlignmentView]) -> None:
        """Raise :class:`PipelineError` when the alignments read cannot work with ``config``.

        Called by the planner (``repmix check``) after :meth:`signature`, with one
        :class:`AlignmentView` per alignment named in ``on:`` (alignment name -> view):
        the two sides' granularity specs (shape, dim) and their towers' encoder
        signatures (per-layer states). Override it to check options against the
        model before any compute, e.g. truncation widths against the embedding
        width. An error is reported at the loss's YAML path (``model.losses.<i>``).
        Default: no check.
        """

    @classmethod
    def check_towers(cls, config: ComponentConfig, towers: Mapping[str, TowerView]) -> None:
        """Raise :class:`PipelineError` when the towers cannot feed this loss under ``config``.

        Called by the planner after :meth:`check_alignments` with a :class:`TowerView` of every
        tower (its granularities, including a corruptor's training targets, its encoder
        signature with ``causal``), for losses that read granularities directly
        (``num_alignments = 0``: masked/causal LM losses). Default: no check.
        """

    @abstractmethod
    def forward(self, inputs: LossInputs) -> LossOutput:
        """Compute the scalar loss and its logs."""



@dataclass
class Examples:
    """A loaded split: parallel columns keyed by tower name, plus optional targets.

    ``columns["text"][i]`` and ``columns["molecule"][i]`` form example ``i``.
    ``targets`` holds per-example values such as STS gold scores (one float per
    example, or a row of floats, e.g. a label and a teacher's score).
    ``extras`` carries split-level data an evaluator may need (e.g. a BEIR
    corpus and qrels, or extra retrieval candidates). ``skipped`` counts rows
    dropped under ``on_error: skip`` or by a dataset's own filter, with reasons
    in ``notes``.
    """

    columns: dict[str, list[Any]]
    targets: list[float] | list[list[float]] | None = None
    ids: list[str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def select(self, indices: Sequence[int]) -> Examples:
        """A new :class:`Examples` with only the rows at ``indices`` (extras shared)."""
        idx = list(indices)
        return replace(
            self,
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
            targets=None if self.targets is None else [self.targets[i] for i in idx],
            ids=None if self.ids is None else [self.ids[i] for i in idx],
        )


class Dataset(Component):
    """Reads examples from files. Not an ``nn.Module``."""

    kind = "dataset"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config

    @abstractmethod
    def load(self, split: str | None = None) -> Examples:
        """Load one split (``None`` = the split named in the config)."""


class Evaluator(Component):
    """Computes metrics of a model on examples."""

    kind = "evaluator"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config

    @abstractmethod
    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        """Return named metrics (flat ``name -> value``)."""


class Corruptor(Component, nn.Module):
    """A training batch -> the corrupted batch the encoder reads, plus target granularities.

    Declared per tower as ``corruption:`` next to the tokenizer; applied in the training
    forward only (:meth:`AssembledModel.encode_for_losses`), after tokenization and before
    the encoder, so ``encode`` and retrieval never see it. Masked-LM masking (BERT
    80/10/10, whole-word, span / n-gram, entity masking) and ELECTRA's replaced-token
    sampling are corruptors. The targets it returns (e.g. ``targets``: the original ids at
    the corrupted positions, an ids granularity) join the tower's :class:`Encoded`, so a
    loss reads them like any granularity; :meth:`signature` declares them for ``repmix check``.

    An ``nn.Module`` so that a corruptor may hold weights (ELECTRA's generator); built after
    the tower's tokenizer and encoder (``runtime.tokenizer``, ``runtime.encoder`` = the
    encoder's signature, ``runtime.extras["encoder"]`` = the encoder itself). Randomness comes
    from ``generator`` when given, else torch's global RNG (seeded by the engine and restored
    on resume), so corruption is reproducible.
    """

    kind = "corruptor"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.tokenizer = runtime.tokenizer

    @classmethod
    def signature(cls, config: ComponentConfig, encoder: EncoderSignature) -> dict[str, GranularitySpec]:
        """Granularities this corruptor adds to the tower in training; :class:`PipelineError` if it cannot work."""
        return {"targets": GranularitySpec("sequence", None, values="ids")}

    @abstractmethod
    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        """Return ``(corrupted batch, target granularities)``; never modify ``batch`` in place."""


@runtime_checkable
class CausalLM(Protocol):
    """What a causal (left-to-right) encoder offers for scoring and generation.

    ``next_logprobs(ids, cache)`` takes token ids ``[B, T]`` that follow the prefix held in
    ``cache`` (``None`` = no prefix) and returns ``(logprobs, cache)``: log-probabilities
    ``[B, T, V]`` (float32) of the token after each given position, and the cache extended
    with them (a KV cache; opaque to callers). ``attention_mask`` ``[B, T_prefix + T]``
    (True = real) allows left-padded batches. ``context_length`` is the most positions the
    model attends to (``None`` = unbounded). Decoding strategies (:class:`DecodingStrategy`)
    and LM evaluators use only this, so they work with any encoder that implements it.
    """

    context_length: int | None

    def next_logprobs(
        self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None
    ) -> tuple[Tensor, Any]: ...


class DecodingStrategy(Component):
    """Turns a :class:`CausalLM` and a prompt into generated token ids (greedy, top-p, speculative, ...).

    Declared as the top-level ``generate:`` block (checked by ``repmix check``) or chosen with
    ``repmix generate RUN --strategy NAME``. Not an ``nn.Module``.
    """

    kind = "decoding"

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        self.config = config

    @abstractmethod
    def generate(
        self,
        lm: CausalLM,
        prompt: Sequence[int],
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int] = (),
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """The generated ids after ``prompt`` (at most ``max_new_tokens``; a stop id ends and is kept)."""


KIND_BASES: dict[str, type[Component]] = {
    "tokenizer": Tokenizer,
    "encoder": Encoder,
    "pooler": Pooler,
    "aligner": Aligner,
    "loss": Loss,
    "dataset": Dataset,
    "evaluator": Evaluator,
    "corruptor": Corruptor,
    "decoding": DecodingStrategy,
}

