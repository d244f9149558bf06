"""Small deterministic components for evaluator tests (no pretrained weights, CPU, milliseconds).

``toy-words`` splits strings on spaces and hashes each word (crc32) to an id;
``toy-embed`` looks the ids up in a seeded embedding table and provides a
``token`` sequence granularity. The std ``mean`` pooler and ``cosine`` /
``maxsim`` aligners complete the model.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from repmix.core.assembly import build_model, plan_model
from repmix.core.components import ComponentConfig, Encoder, Runtime, Tokenizer
from repmix.core.configio import LocatedConfig
from repmix.core.types import Encoded, EncoderSignature, Granularity, GranularitySpec
from repmix.registry import temporary_component

VOCAB = 997
DIM = 16


class ToyWords(Tokenizer):
    """Whitespace words -> crc32 ids, right-padded with a mask."""

    class Config(ComponentConfig):
        pass

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        words = [str(x).split() or [""] for x in items]
        t = max(len(w) for w in words)
        ids = torch.zeros(len(words), t, dtype=torch.long)
        mask = torch.zeros(len(words), t, dtype=torch.bool)
        for i, ws in enumerate(words):
            ids[i, : len(ws)] = torch.tensor([zlib.crc32(w.encode()) % VOCAB for w in ws])
            mask[i, : len(ws)] = True
        return {"ids": ids, "mask": mask}

    def sort_key(self, item: Any) -> int:
        return len(str(item).split())


class ToyEmbed(Encoder):
    """A seeded embedding table; ``token`` granularity only."""

    class Config(ComponentConfig):
        dim: int = DIM

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.table = nn.Embedding(VOCAB, config.dim)  # type: ignore[attr-defined]

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)})  # type: ignore[attr-defined]

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        return Encoded({"token": Granularity(self.table(batch["ids"]), batch["mask"])})


TOY_TOWER = {
    "tokenizer": {"type": "toy-words"},
    "encoder": {"type": "toy-embed"},
    "poolers": {"sentence": {"type": "mean"}},
}


@contextmanager
def toy_components() -> Iterator[None]:
    """Register ``toy-words`` and ``toy-embed`` for the duration of a ``with`` block."""
    with ExitStack() as stack:
        stack.enter_context(temporary_component("tokenizer", "toy-words", ToyWords))
        stack.enter_context(temporary_component("encoder", "toy-embed", ToyEmbed))
        yield


def toy_model(
    alignments: dict[str, Any], towers: tuple[str, str] = ("text", "molecule"), seed: int = 0, shared: bool = False
) -> Any:
    """Two toy towers (separate weights, or the second ``shared_with`` the first) with the given alignments.

    Call inside :func:`toy_components`.
    """
    second = {"shared_with": towers[0]} if shared else dict(TOY_TOWER)
    data = {
        "model": {
            "towers": {towers[0]: dict(TOY_TOWER), towers[1]: second},
            "alignments": alignments,
        }
    }
    return build_model(plan_model(LocatedConfig(data)), seed=seed)


ALIGNMENTS: dict[str, Any] = {
    "coarse": {"type": "cosine", "between": ["text.sentence", "molecule.sentence"]},
    "fine": {"type": "maxsim", "between": ["text.token", "molecule.token"]},
    "flipped": {"type": "maxsim", "between": ["molecule.token", "text.token"]},
}
