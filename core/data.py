"""Dataset and evaluator interfaces (entry-point groups ``repmix.datasets``, ``repmix.evaluators``)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from repmix.core.components import Component, ComponentConfig, Runtime

if TYPE_CHECKING:
    from repmix.core.model import AssembledModel


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
