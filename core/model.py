"""The assembled model: named towers, named alignments, weighted losses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from repmix.core.components import Aligner, Corruptor, Encoder, Loss, LossInputs, Pooler, Tokenizer
from repmix.core.errors import InputError
from repmix.core.dataflow import Alignment, Encoded

TowerRef = tuple[str, str]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tokenizer batch (tensor, mapping, sequence or object with ``.to``) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    to = getattr(batch, "to", None)
    return to(device) if callable(to) else batch


class Tower(nn.Module):
    """Tokenizer + (training-only corruptor) + encoder + poolers (applied in declaration order)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        encoder: Encoder,
        poolers: dict[str, Pooler],
        corruptor: Corruptor | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.poolers = nn.ModuleDict(poolers)
        self.corruptor = corruptor
        self.needs_layers = any(p.needs_layers for p in poolers.values())

    def forward(self, batch: Any, output_layers: bool | None = None, corrupt: bool = False) -> Encoded:
        """Encode a tokenized batch and add every pooled granularity.

        With ``corrupt`` (the training forward) and a ``corruption:`` block, the batch is
        corrupted first and the corruptor's target granularities join the output.
        """
        want_layers = self.needs_layers if output_layers is None else output_layers
        targets: dict[str, Any] = {}
        if corrupt and self.corruptor is not None:
            batch, targets = self.corruptor(batch)
        encoded = self.encoder(batch, output_layers=want_layers)
        for name, pooler in self.poolers.items():
            encoded.granularities[name] = pooler(encoded)
        encoded.granularities.update(targets)
        return encoded


@dataclass
class ModelOutput:
    """Outputs of one forward pass over a training batch."""

    outputs: dict[str, Encoded]
    alignments: dict[str, Alignment]
    loss: Tensor | None
    logs: dict[str, float] = field(default_factory=dict)


class AssembledModel(nn.Module):
    """A model assembled from a config by :func:`repmix.core.assembly.build_model`.

    Towers that declare ``shared_with`` reuse another tower's modules; only the
    owning tower appears in ``state_dict``.
    """

    def __init__(
        self,
        towers: dict[str, Tower],
        tower_alias: dict[str, str],
        aligners: dict[str, Aligner],
        alignment_between: dict[str, tuple[TowerRef, TowerRef]],
        losses: list[Loss],
        loss_on: list[list[str]],
        loss_weights: list[float],
        granularity_shapes: dict[str, dict[str, str]],
        config: dict[str, Any],
    ) -> None:
        super().__init__()
        self.towers = nn.ModuleDict(towers)
        self.tower_alias = dict(tower_alias)
        self.aligners = nn.ModuleDict(aligners)
        self.alignment_between = dict(alignment_between)
        self.losses = nn.ModuleList(losses)
        self.loss_on = [list(o) for o in loss_on]
        self.loss_weights = list(loss_weights)
        self.granularity_shapes = {t: dict(g) for t, g in granularity_shapes.items()}
        #: The resolved config this model was built from (plain data).
        self.config = config
        #: Each component's plugin distribution and version (written to plugins.lock).
        self.lock: list[dict[str, str]] = []
        #: YAML path -> (component instance, its PlannedComponent with ``trainable`` and ``lr``);
        #: the engine builds per-component optimiser groups from it.
        self.components: dict[str, tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ towers
    @property
    def tower_names(self) -> list[str]:
        """Every tower name, shared ones included."""
        return list(self.tower_alias)

    def tower(self, name: str) -> Tower:
        """The tower called ``name`` (resolving ``shared_with``)."""
        if name not in self.tower_alias:
            raise InputError(f"model has no tower {name!r}; towers: {', '.join(self.tower_names)}")
        return self.towers[self.tower_alias[name]]  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    def encode_batch(
        self, tower: str, items: Sequence[Any], output_layers: bool | None = None, corrupt: bool = False
    ) -> Encoded:
        """Tokenize one batch of ``items`` and run it through ``tower`` (with gradients if enabled).

        Returns every granularity with its mask; :meth:`encode` is the batched,
        inference-mode view that returns one vector per item.
        """
        t = self.tower(tower)
        batch = to_device(t.tokenizer(list(items)), self.device)
        return t(batch, output_layers=output_layers, corrupt=corrupt)

    def encode_for_losses(self, tower: str, items: Sequence[Any]) -> Encoded:
        """:meth:`encode_batch` as the training objective needs it: per-layer states where a loss reads
        them, and the tower's ``corruption:`` applied (its targets join the output)."""
        return self.encode_batch(
            tower, items, output_layers=True if self._layer_towers().get(tower) else None, corrupt=True
        )

    def _layer_towers(self) -> dict[str, bool]:
        """Tower name -> whether a loss with ``needs_layers`` reads an alignment on it."""
        wanted = {name: False for name in self.tower_alias}
        for loss, on in zip(self.losses, self.loss_on):
            if getattr(loss, "needs_layers", False):
                for alignment in on:
                    for tower, _ in self.alignment_between[alignment]:
                        wanted[tower] = True
        return wanted

    # ----------------------------------------------------------------- forward
    def align(self, outputs: dict[str, Encoded], names: Sequence[str] | None = None) -> dict[str, Alignment]:
        """Compute the named alignments (all by default) from tower outputs."""
        out = {}
        for name in names if names is not None else list(self.aligners):
            (ta, ga), (tb, gb) = self.alignment_between[name]
            out[name] = self.aligners[name](outputs[ta][ga], outputs[tb][gb])
        return out

    def forward(self, inputs: dict[str, Sequence[Any]], targets: Tensor | None = None) -> ModelOutput:
        """Encode each tower's items, compute alignments and the weighted loss."""
        outputs = {name: self.encode_for_losses(name, items) for name, items in inputs.items()}
        return self.objective(outputs, targets)

    def objective(self, outputs: dict[str, Encoded], targets: Tensor | None = None) -> ModelOutput:
        """Alignments and the weighted loss from already-encoded tower outputs.

        :meth:`forward` is ``encode`` followed by this; the engine calls the two
        halves separately to gather embeddings across processes in between.
        """
        needed = [
            n for n, ((ta, _), (tb, _)) in self.alignment_between.items() if ta in outputs and tb in outputs
        ]
        alignments = self.align(outputs, needed)
        total: Tensor | None = None
        logs: dict[str, float] = {}
        for i, (loss, on, weight) in enumerate(zip(self.losses, self.loss_on, self.loss_weights)):
            if any(o not in alignments for o in on):
                continue
            result = loss(
                LossInputs(
                    {o: alignments[o] for o in on},
                    outputs,
                    targets=targets,
                    between={o: self.alignment_between[o] for o in on},
                    aligners={o: self.aligners[o] for o in on},
                    towers={t: self.tower(t) for t in outputs if t in self.tower_alias},
                )
            )
            label = f"loss{i}.{type(loss).__name__}"
            logs[label] = float(result.value.detach())
            logs.update({f"{label}.{k}": v for k, v in result.logs.items()})
            term = weight * result.value
            total = term if total is None else total + term
        if total is not None:
            logs["loss"] = float(total.detach())
        return ModelOutput(outputs, alignments, total, logs)

    # -------------------------------------------------------------- inference
    def granularities(self, tower: str) -> dict[str, str]:
        """Granularity name -> ``sequence``/``pooled`` for a tower."""
        self.tower(tower)
        return dict(self.granularity_shapes[tower])

    def default_granularity(self, tower: str) -> str:
        """The tower's last declared pooled granularity (what ``encode`` writes by default)."""
        pooled = [g for g, shape in self.granularities(tower).items() if shape == "pooled"]
        if not pooled:
            raise InputError(
                f"tower {tower!r} has no pooled granularity to write one vector per input",
                hint="add a pooler, e.g. poolers: {sentence: {type: mean}}",
            )
        return pooled[-1]

    def default_tower(self) -> str:
        """The tower :meth:`encode` uses when none is named: the only one, or the first declared."""
        return self.tower_names[0]

    @torch.inference_mode()
    def encode(
        self,
        inputs: Sequence[Any] | str,
        tower: str | None = None,
        granularity: str | None = None,
        batch_size: int = 32,
        sort_by_length: bool = True,
        progress: bool = False,
    ) -> np.ndarray:
        """One float32 vector per input from a pooled granularity, in input order.

        ``inputs`` are raw items of ``tower`` (strings, SMILES, ...; a single
        string is one input); ``tower`` defaults to :meth:`default_tower` and
        ``granularity`` to the tower's last declared pooled one. Items are
        sorted by length before batching (less padding), as sentence-transformers
        does, and put back in order afterwards.
        """
        if isinstance(inputs, str):
            inputs = [inputs]
        items = list(inputs)
        tower = tower or self.default_tower()
        t = self.tower(tower)
        grans = self.granularities(tower)
        gran = granularity or self.default_granularity(tower)
        if gran not in grans:
            raise InputError(f"tower {tower!r} has no granularity {gran!r}; it has: {', '.join(grans)}")
        if grans[gran] != "pooled":
            pooled = [g for g, s in grans.items() if s == "pooled"]
            raise InputError(
                f"granularity {gran!r} is a sequence (one vector per token); encode writes one row per input",
                hint=f"choose a pooled granularity: {', '.join(pooled) or '(none: add a pooler)'}",
            )
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        was_training = self.training
        self.eval()
        n = len(items)
        order = (
            sorted(range(n), key=lambda i: -t.tokenizer.sort_key(items[i])) if sort_by_length else list(range(n))
        )
        chunks: list[Tensor] = []
        starts = range(0, n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"encode {tower}", unit="batch")
        needs_layers = t.needs_layers
        for start in starts:
            idx = order[start : start + batch_size]
            batch = to_device(t.tokenizer([items[i] for i in idx]), self.device)
            encoded = t(batch, output_layers=needs_layers)
            chunks.append(encoded[gran].hidden.float().cpu())
        self.train(was_training)
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        stacked = torch.cat(chunks)
        out = torch.empty_like(stacked)
        out[torch.tensor(order)] = stacked
        return out.numpy()

    def similarity(
        self,
        a: Sequence[Any] | str,
        b: Sequence[Any] | str,
        alignment: str | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Score every input of ``a`` against every input of ``b`` with a declared alignment.

        ``alignment`` defaults to the first declared one; ``a`` feeds its first
        side and ``b`` its second. Returns the aligner's ``[len(a), len(b)]``
        score matrix (cosine, dot, MaxSim, optimal transport, ...).
        """
        if not self.alignment_between:
            raise InputError("this model declares no alignment to score with", hint="add model.alignments")
        name = alignment or next(iter(self.alignment_between))
        if name not in self.alignment_between:
            raise InputError(
                f"model has no alignment {name!r}; alignments: {', '.join(self.alignment_between)}"
            )
        (ta, ga), (tb, gb) = self.alignment_between[name]
        items_a = [a] if isinstance(a, str) else list(a)
        items_b = [b] if isinstance(b, str) else list(b)
        was_training = self.training
        self.eval()
        rows = []
        with torch.inference_mode():
            side_b = [self.encode_batch(tb, items_b[i : i + batch_size])[gb] for i in range(0, len(items_b), batch_size)]
            for i in range(0, len(items_a), batch_size):
                ga_i = self.encode_batch(ta, items_a[i : i + batch_size])[ga]
                rows.append(torch.cat([self.aligners[name](ga_i, g).scores for g in side_b], dim=1).float().cpu())
        self.train(was_training)
        return torch.cat(rows).numpy() if rows else np.zeros((0, len(items_b)), dtype=np.float32)

    def save(self, directory: str | Path) -> Path:
        """Save this model to ``directory`` (:func:`repmix.core.artifacts.save_model`); returns the folder."""
        from repmix.core.artifacts import save_model

        return save_model(self, directory)


#: The public name of an assembled model: what :func:`repmix.load` returns.
Model = AssembledModel
