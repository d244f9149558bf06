"""``matryoshka2d.sts-grid``: STS Spearman correlation for every (layer, dim) of one trained model.

Each sentence is encoded once with all per-layer states; for every requested
hidden-state layer the alignment's sides are re-pooled with the tower's own
poolers (:func:`repmix_matryoshka2d.layers.repool`, the semantics the loss trains),
truncated to every requested width and L2-normalised; the cosine of each pair is
correlated with the gold scores (``scipy.stats.spearmanr``, as
sentence-transformers' ``EmbeddingSimilarityEvaluator``).

Metrics: ``spearman_cosine`` (the tower's own output, as std's ``sts`` evaluator)
and ``spearman_L{layer}_d{dim}`` for the grid. ``repmix matryoshka2d-grid`` turns
them into a heat-map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from repmix.sdk import ComponentConfig, ConfigError, Evaluator, Examples, InputError
from torch import Tensor

from repmix_matryoshka2d import CITATION
from repmix_matryoshka2d.layers import layer_count, repool

if TYPE_CHECKING:
    from repmix.sdk import AssembledModel


def default_dims(width: int, smallest: int = 32) -> list[int]:
    """``width`` halved down to ``smallest``: 384 -> [384, 192, 96, 48] (at least ``[width]``)."""
    dims = [width]
    while dims[-1] // 2 >= smallest:
        dims.append(dims[-1] // 2)
    return dims


def grid_key(layer: int, dim: int) -> str:
    """Metric name of one grid cell."""
    return f"spearman_L{layer}_d{dim}"


class StsGridEvaluator(Evaluator):
    """Spearman of cosine similarities vs gold scores over a (layer x dim) grid."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``matryoshka2d.sts-grid``."""

        on: str | None = Field(None, description="the alignment whose two sides are compared (default: the only one)")
        columns: tuple[str, str] | None = Field(None, description="data columns of the two sides (default: their towers)")
        layers: list[int] | None = Field(
            None, description="hidden-state layers of the grid (default: every transformer layer, 1..N-1)"
        )
        dims: list[int] | None = Field(None, description="widths of the grid (default: the full width halved down to 32)")
        batch_size: int = Field(64, ge=1, description="sentences per forward pass")

        @field_validator("dims")
        @classmethod
        def _dims(cls, value: list[int] | None) -> list[int] | None:
            if value is not None and (not value or any(d < 1 for d in value)):
                raise ValueError("dims must list widths >= 1")
            return value

    config: Config

    def _sides(self, model: AssembledModel) -> tuple[str, tuple[str, str], tuple[str, str]]:
        names = list(model.alignment_between)
        name = self.config.on
        if name is None:
            if len(names) != 1:
                raise ConfigError("sts-grid needs 'on:' naming an alignment", path="on", allowed=names)
            name = names[0]
        if name not in model.alignment_between:
            raise ConfigError(f"sts-grid: the model has no alignment {name!r}", path="on", found=name, allowed=names)
        a, b = model.alignment_between[name]
        return name, a, b

    @torch.inference_mode()
    def embed_layers(
        self, model: AssembledModel, tower: str, granularity: str, items: Sequence[Any], layers: list[int] | None
    ) -> tuple[dict[int, Tensor], Tensor, int]:
        """Per-layer re-pooled embeddings {layer: [n, D]} and the tower's own output [n, D], in input order."""
        t = model.tower(tower)
        order = sorted(range(len(items)), key=lambda i: -t.tokenizer.sort_key(items[i]))
        per_layer: dict[int, list[Tensor]] = {}
        own: list[Tensor] = []
        num_states = 0
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            encoded = model.encode_batch(tower, [items[i] for i in idx], output_layers=True)
            num_states = layer_count(encoded, tower)
            wanted = layers if layers is not None else list(range(1, num_states))
            for layer in wanted:
                if not 0 <= layer < num_states:
                    raise ConfigError(
                        f"sts-grid layer {layer} is out of range: tower {tower!r} has hidden states 0..{num_states - 1}",
                        path="layers",
                        found=layer,
                    )
                per_layer.setdefault(layer, []).append(repool(model.tower(tower), tower, granularity, encoded, layer).hidden.float())
            own.append(encoded[granularity].hidden.float())
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        out = {layer: torch.cat(chunks)[inverse] for layer, chunks in per_layer.items()}
        return out, torch.cat(own)[inverse], num_states

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        """``spearman_cosine`` and ``spearman_L{layer}_d{dim}`` for the grid."""
        from scipy.stats import spearmanr

        if data.targets is None:
            raise InputError("sts-grid needs gold scores (Examples.targets)", hint="use the sts dataset")
        if len(data) < 2:
            raise InputError(f"sts-grid needs at least 2 pairs, got {len(data)}")
        _, (ta, ga), (tb, gb) = self._sides(model)
        cols = self.config.columns or (ta, tb)
        for col in cols:
            if col not in data.columns:
                raise InputError(f"sts-grid needs data column {col!r}; the data has: {', '.join(data.columns)}")
        was_training = model.training
        model.eval()
        try:
            emb_a, own_a, _ = self.embed_layers(model, ta, ga, data.columns[cols[0]], self.config.layers)
            emb_b, own_b, _ = self.embed_layers(model, tb, gb, data.columns[cols[1]], self.config.layers)
        finally:
            model.train(was_training)
        gold = np.asarray(data.targets, dtype=np.float64)

        def spearman(x: Tensor, y: Tensor) -> float:
            sims = F.cosine_similarity(x, y, dim=1).double().numpy()
            return float(spearmanr(sims, gold).statistic)

        metrics = {"spearman_cosine": spearman(own_a, own_b)}
        width = min(own_a.shape[1], own_b.shape[1])
        dims = self.config.dims or default_dims(width)
        too_wide = [d for d in dims if d > width]
        if too_wide:
            raise ConfigError(f"sts-grid dims {too_wide} exceed the embedding width {width}", path="dims")
        for layer in sorted(emb_a):
            for dim in dims:
                metrics[grid_key(layer, dim)] = spearman(emb_a[layer][:, :dim], emb_b[layer][:, :dim])
        return metrics
