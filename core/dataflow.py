"""Data that flows between components: granularities, encodings, alignments, losses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

#: ``sequence``: [B, N, D] with a [B, N] mask. ``pooled``: [B, D], no mask.
Shape = Literal["sequence", "pooled"]


@dataclass
class Granularity:
    """One named representation level of a batch: a tensor and, for sequences, a mask.

    ``hidden`` is [B, N, D] with ``mask`` [B, N] (True = real element) for
    sequence granularities (tokens, atoms, motifs), or [B, D] with
    ``mask=None`` for pooled ones (sentence, molecule).
    """

    hidden: Tensor
    mask: Tensor | None = None

    @property
    def shape_kind(self) -> Shape:
        if self.hidden.dim() == 2 and self.mask is not None and not self.hidden.is_floating_point():
            return "sequence"  # ids: [B, N] integers with a mask
        return "pooled" if self.hidden.dim() == 2 else "sequence"

    @property
    def dim(self) -> int:
        return int(self.hidden.shape[-1])

    def full_mask(self) -> Tensor:
        """The mask, or all-True when none was given (sequence granularities only)."""
        if self.mask is not None:
            return self.mask.bool()
        return torch.ones(self.hidden.shape[:-1], dtype=torch.bool, device=self.hidden.device)

    def to(self, device: torch.device | str) -> Granularity:
        return Granularity(self.hidden.to(device), None if self.mask is None else self.mask.to(device))


@dataclass
class Encoded:
    """An encoder's output: granularity name -> :class:`Granularity`.

    ``layers`` holds per-layer hidden states where the encoder offers them
    (index 0 = embedding output, index -1 = last layer), each shaped like the
    granularity named by ``layers_of`` and sharing its mask. Poolers and
    modifiers that need them (multi-layer pooling, 2D Matryoshka) read them
    from here explicitly; nothing is monkey-patched.
    """

    granularities: dict[str, Granularity]
    layers: tuple[Tensor, ...] | None = None
    layers_of: str = "token"
    extras: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Granularity:
        return self.granularities[name]

    def __contains__(self, name: object) -> bool:
        return name in self.granularities

    def layer(self, index: int) -> Granularity:
        """Per-layer states at ``index`` as a granularity (mask of ``layers_of``)."""
        if self.layers is None:
            raise ValueError("this encoder output carries no per-layer hidden states")
        return Granularity(self.layers[index], self.granularities[self.layers_of].mask)


@dataclass
class Alignment:
    """Scores between two sets of items: [B_a, B_b], plus optional detail (e.g. a transport plan)."""

    scores: Tensor
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossOutput:
    """A scalar loss and named values to log."""

    value: Tensor
    logs: dict[str, float] = field(default_factory=dict)


#: ``hidden``: float vectors (the default). ``ids``: integer ids, ``hidden`` is [B, N] (long) and
#: ``mask`` marks the positions that carry one (token ids, masked-LM targets).
Values = Literal["hidden", "ids"]


@dataclass(frozen=True)
class GranularitySpec:
    """Static description of a granularity, known before any compute.

    ``values="ids"`` declares a granularity of integer ids (``hidden`` [B, N] long with a
    [B, N] mask), such as the token ids an LM encoder read or the targets a corruptor
    emits; ``dim`` is then the number of distinct ids (the vocabulary size) when known.
    """

    shape: Shape
    dim: int | None = None
    values: Values = "hidden"


@dataclass(frozen=True)
class EncoderSignature:
    """What an encoder provides, derived from its config alone.

    ``num_layers`` counts the per-layer states the encoder can expose
    (embedding output included), or is ``None`` where it exposes none.
    """

    granularities: dict[str, GranularitySpec]
    num_layers: int | None = None
    layers_of: str = "token"
    #: True for a causal (left-to-right) model, False for a bidirectional one, None when unknown.
    causal: bool | None = None


@dataclass(frozen=True)
class TowerView:
    """Static view of one tower, known before any compute: what a tower-reading loss checks.

    Given to :meth:`repmix.core.components.Loss.check_towers` by the planner.
    ``granularities`` holds the encoder's, the poolers' and the corruptor's
    (training targets, ``values="ids"``) granularities; ``corruptor`` is the
    type name of the tower's ``corruption:`` block, or ``None``.
    """

    name: str
    granularities: dict[str, GranularitySpec]
    encoder: EncoderSignature
    corruptor: str | None = None


@dataclass(frozen=True)
class AlignmentView:
    """Static view of one alignment a loss reads, known before any compute.

    Given to :meth:`repmix.core.components.Loss.check_alignments` by the planner
    (``repmix check``), so a loss can check its options against the widths of
    the embeddings it reads and the per-layer states their towers expose.

    Attributes:
        name: the alignment's name (a key of ``model.alignments``).
        sides: the two sides as ``(tower, granularity)`` names, in ``between:`` order.
        specs: the two sides' :class:`GranularitySpec` (``dim`` may be ``None``: unknown).
        encoders: the :class:`EncoderSignature` of each side's tower (the owner's
            for a ``shared_with`` tower).
    """

    name: str
    sides: tuple[tuple[str, str], tuple[str, str]]
    specs: tuple[GranularitySpec, GranularitySpec]
    encoders: tuple[EncoderSignature, EncoderSignature]

    @property
    def width(self) -> int | None:
        """The narrower known width of the two sides, or ``None`` when neither is known."""
        dims = [s.dim for s in self.specs if s.dim is not None]
        return min(dims) if dims else None
