"""Small, real components used by the core tests (no plugin needed).

They are registered either temporarily (``temporary_component``) or through a
fake distribution's entry points written by the ``fake_plugin`` fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from repmix.core.components import (
    Aligner,
    ComponentConfig,
    Encoder,
    Loss,
    LossInputs,
    Pooler,
    Runtime,
    Tokenizer,
)
from repmix.core.dataflow import Alignment, Encoded, EncoderSignature, Granularity, GranularitySpec, LossOutput


class CharTokenizer(Tokenizer):
    """Characters -> ids modulo ``vocab``, or by position in an alphabet file; pads with 0."""

    class Config(ComponentConfig):
        vocab: int = Field(128, gt=1)
        alphabet_file: str | None = Field(None, description="a text file whose characters are the vocabulary")

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.alphabet: dict[str, int] | None = None
        if config.alphabet_file is not None:
            chars = Path(config.alphabet_file).read_text(encoding="utf-8").strip()
            self.alphabet = {c: 1 + i % (config.vocab - 2) for i, c in enumerate(chars)}

    def _id(self, c: str) -> int:
        if self.alphabet is None:
            return 1 + ord(c) % (self.config.vocab - 1)
        return self.alphabet.get(c, self.config.vocab - 1)

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        length = max(1, max(len(s) for s in items))
        ids = torch.zeros(len(items), length, dtype=torch.long)
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for i, s in enumerate(items):
            if s:
                ids[i, : len(s)] = torch.tensor([self._id(c) for c in s])
                mask[i, : len(s)] = True
        return {"ids": ids, "mask": mask}

    def saved_files(self) -> dict[str, Path | list[Path]]:
        return {} if self.config.alphabet_file is None else {"alphabet_file": Path(self.config.alphabet_file)}


class EmbeddingEncoder(Encoder):
    """Embedding + one linear layer; exposes two per-layer states."""

    class Config(ComponentConfig):
        dim: int = Field(16, gt=0)
        vocab: int = 128

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.embed = nn.Embedding(config.vocab, config.dim)
        self.linear = nn.Linear(config.dim, config.dim)

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)}, num_layers=2)

    def forward(self, batch: dict[str, torch.Tensor], output_layers: bool = False) -> Encoded:
        h0 = self.embed(batch["ids"])
        h1 = torch.tanh(self.linear(h0))
        return Encoded({"token": Granularity(h1, batch["mask"])}, layers=(h0, h1) if output_layers else None)


class NoLayersEncoder(EmbeddingEncoder):
    """Same as :class:`EmbeddingEncoder` but exposes no per-layer states."""

    @classmethod
    def signature(cls, config: EmbeddingEncoder.Config) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)}, num_layers=None)


class MeanPooler(Pooler):
    """Masked mean."""

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        m = g.full_mask().unsqueeze(-1).float()
        out = (g.hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return Granularity(nn.functional.normalize(out, dim=-1) if self.config.normalize else out)


class LayerMeanPooler(MeanPooler):
    """Mean over tokens of the mean over layers (needs per-layer states)."""

    needs_layers = True

    def forward(self, encoded: Encoded) -> Granularity:
        stacked = torch.stack(encoded.layers or (), 0).mean(0)
        m = encoded[self.config.source].full_mask().unsqueeze(-1).float()
        return Granularity((stacked * m).sum(1) / m.sum(1).clamp(min=1e-9))


class CosineAligner(Aligner):
    """Cosine similarity matrix."""

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        return Alignment(nn.functional.normalize(a.hidden, dim=-1) @ nn.functional.normalize(b.hidden, dim=-1).T)


class ContrastiveLoss(Loss):
    """Cross-entropy over scaled scores with the diagonal as positives."""

    class Config(ComponentConfig):
        scale: float = Field(20.0, gt=0)

    def forward(self, inputs: LossInputs) -> LossOutput:
        scores = inputs.alignment.scores * self.config.scale
        labels = torch.arange(scores.shape[0], device=scores.device)
        return LossOutput(nn.functional.cross_entropy(scores, labels), {"scale": self.config.scale})


class LayerContrastiveLoss(ContrastiveLoss):
    """:class:`ContrastiveLoss` plus the mean first-layer norm of the query tower (reads per-layer states)."""

    needs_layers = True

    def forward(self, inputs: LossInputs) -> LossOutput:
        (tower, _), _ = inputs.between[next(iter(inputs.alignments))]
        layers = inputs.outputs[tower].layers
        if layers is None:
            raise AssertionError("layer-contrastive got no per-layer states")
        base = super().forward(inputs)
        return LossOutput(base.value + 0.0 * layers[0].norm(dim=-1).mean(), base.logs)


TOYS: dict[tuple[str, str], type] = {
    ("tokenizer", "chars"): CharTokenizer,
    ("encoder", "embedding"): EmbeddingEncoder,
    ("encoder", "no-layers"): NoLayersEncoder,
    ("pooler", "toy-mean"): MeanPooler,
    ("pooler", "layer-mean"): LayerMeanPooler,
    ("aligner", "toy-cosine"): CosineAligner,
    ("loss", "contrastive"): ContrastiveLoss,
    ("loss", "layer-contrastive"): LayerContrastiveLoss,
}

GROUP_OF_KIND = {
    "tokenizer": "repmix.tokenizers",
    "encoder": "repmix.encoders",
    "pooler": "repmix.poolers",
    "aligner": "repmix.aligners",
    "loss": "repmix.losses",
}

TOY_CONFIG = """\
model:
  towers:
    query:
      tokenizer: {type: chars}
      encoder: {type: embedding, dim: 16}
      poolers:
        sentence: {type: toy-mean, normalize: true}
    document: {shared_with: query}
  alignments:
    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}
  losses:
    - {type: contrastive, on: sim, scale: 20.0}
"""
