"""``defsent.defsent``: classify a definition to its dictionary entry over the entry matrix.

DefSent+ (arXiv:2405.16153), as far as it is specified::

    E[e] = (1/m_e) Σ_j pool(Enc(d_ej))        entry vector: mean of its definitions' pooled embeddings
    logits = s · Eᵀ                           s = pool(Enc(d)) of a training definition
    L = CE(logits / τ, e(d))

``E`` is computed by a frozen snapshot of the model: under ``torch.no_grad()`` and in eval mode,
with the tower that produced ``s`` (``LossInputs.towers``), at the first training step, and again
every ``rebuild_every`` steps when set (progressive rebuilding; DefSent+'s "Progressive Separate
Training" rebuilds the entries from an earlier-stage frozen model, with a schedule the abstract
does not give). No gradient ever reaches ``E``: it is a non-persistent buffer, outside the
optimiser and the saved weights (it is rebuilt from the dictionary when needed).

``normalize: true`` (default) makes the logits cosines (s and E rows L2-normalised) divided by
τ; ``normalize: false`` uses the raw dot product ``s · Eᵀ`` (DefSent v1's prediction layer, which
was the frozen, tied word-embedding matrix, with τ = 1). The loss reads the first side of the
alignment it is declared on; the other side is not used. Targets are entry indexes
(``defsent.definitions`` with the same ``dictionary`` block).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from repmix.sdk import ComponentConfig, InputError, Loss, LossInputs, LossOutput, Runtime
from repmix_defsent import CITATION
from repmix_defsent.entries import DictionaryConfig, entry_matrix, isotropy, load_dictionary


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    to = getattr(batch, "to", None)
    return to(device) if callable(to) else batch


class DefSentLoss(Loss):
    """Softmax over the (frozen, mean-of-definitions) entry matrix (see the module docstring)."""

    citation: ClassVar[str] = CITATION
    needs_targets: ClassVar[bool] = True

    class Config(ComponentConfig):
        """Options of ``defsent.defsent``."""

        dictionary: DictionaryConfig = Field(
            default_factory=DictionaryConfig, description="entries and definitions; must equal the dataset's block"
        )
        temperature: float = Field(0.05, gt=0, description="logits are divided by τ (a repmix choice; unknown in DefSent+)")
        normalize: bool = Field(True, description="cosine logits (true) or the raw dot product s·Eᵀ (false)")
        rebuild_every: int | None = Field(
            None, ge=1, description="rebuild the entry matrix from the current model every N steps (null: once, at the start)"
        )
        build_batch_size: int = Field(64, ge=1, description="definitions encoded at once when building the entry matrix")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.dictionary = load_dictionary(config.dictionary)
        self.register_buffer("entries", torch.zeros(0), persistent=False)
        self.steps = 0
        #: Mean pairwise cosine of the entry matrix at each build (isotropy; lower = more isotropic).
        self.isotropy_history: list[float] = []

    @property
    def num_entries(self) -> int:
        return len(self.dictionary)

    def set_entries(self, matrix: Tensor) -> None:
        """Install an entry matrix [|E|, d] (detached: it never receives a gradient)."""
        if matrix.dim() != 2 or matrix.shape[0] != self.num_entries:
            raise InputError(f"the entry matrix must be [{self.num_entries}, d], got {tuple(matrix.shape)}")
        self.entries = matrix.detach().clone()
        self.isotropy_history.append(isotropy(self.entries))

    @torch.no_grad()
    def build_entries(self, tower: Any, granularity: str, device: torch.device) -> Tensor:
        """Encode every definition with ``tower`` (eval mode, no gradient) and average per entry."""
        was_training = tower.training
        tower.eval()

        def embed(texts: list[str]) -> Tensor:
            encoded = tower(_to(tower.tokenizer(texts), device))
            return encoded[granularity].hidden

        try:
            return entry_matrix(self.dictionary, embed, self.config.build_batch_size)
        finally:
            tower.train(was_training)

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = next(iter(inputs.alignments))
        s = inputs.sides(name)[0].hidden
        if s.dim() != 2:
            raise InputError("defsent needs a pooled sentence embedding on the first side of its alignment")
        if inputs.targets is None:
            raise InputError("defsent needs the entry index of every definition as targets (defsent.definitions)")
        due = self.entries.numel() == 0 or (
            self.training and self.config.rebuild_every is not None and self.steps > 0
            and self.steps % self.config.rebuild_every == 0
        )
        if due:
            (tower, gran), _ = inputs.between[name]
            if tower not in inputs.towers:
                raise InputError(
                    "defsent builds its entry matrix with the model's tower, which these loss inputs do not carry",
                    hint="train through repmix (the engine passes the towers), or call set_entries() first",
                )
            self.set_entries(self.build_entries(inputs.towers[tower], gran, s.device))
        if self.training:
            self.steps += 1
        targets = inputs.targets.round().long().to(s.device)
        if targets.dim() != 1 or targets.shape[0] != s.shape[0]:
            raise InputError(f"defsent reads one entry index per definition, got targets {tuple(inputs.targets.shape)}")
        if int(targets.min()) < 0 or int(targets.max()) >= self.num_entries:
            raise InputError(
                f"entry index {int(targets.max())} outside the dictionary's {self.num_entries} entries",
                hint="give the dataset and the loss the same dictionary block",
            )
        entries = self.entries.to(s.dtype)
        if entries.shape[1] != s.shape[1]:
            raise InputError(f"entry matrix width {entries.shape[1]} differs from the embedding width {s.shape[1]}")
        if self.config.normalize:
            logits = F.normalize(s, dim=-1) @ F.normalize(entries, dim=-1).T
        else:
            logits = s @ entries.T
        logits = logits / self.config.temperature
        value = F.cross_entropy(logits, targets)
        accuracy = float((logits.argmax(-1) == targets).float().mean())
        return LossOutput(value, {"accuracy": accuracy, "entry_mean_cos": self.isotropy_history[-1]})
