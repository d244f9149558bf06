"""The dictionary (entries and their definitions) and the entry matrix built from it."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from repmix.sdk import InputError
from repmix_defsent.wordnet import read_dictionary


class DictionaryConfig(BaseModel):
    """Where the entries and definitions come from (the same block in the dataset and the loss)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["wordnet-subset", "wordnet", "tsv"] = Field(
        "wordnet-subset",
        description="the packaged WordNet 3.0 subset (3,741 entries, 10,802 definitions), a WordNet dict folder, "
        "or a TSV with the columns entry and definition",
    )
    path: str | None = Field(None, description="the WordNet folder (source: wordnet) or the TSV file (source: tsv)")
    pos: list[Literal["noun", "verb", "adj", "adv"]] = Field(
        default_factory=lambda: ["noun", "verb", "adj", "adv"], description="parts of speech read (source: wordnet)"
    )
    limit: int | None = Field(None, ge=2, description="keep N entries (a seeded draw, in dictionary order)")
    seed: int = Field(0, description="seed of the limit draw")

    @model_validator(mode="after")
    def _path_given(self) -> DictionaryConfig:
        if self.source != "wordnet-subset" and not self.path:
            raise ValueError(f"source {self.source!r} needs 'path'")
        return self


def packaged_dictionary() -> Path:
    """The packaged WordNet subset (TSV: entry, definition)."""
    return Path(str(resources.files("repmix_defsent") / "data" / "wordnet-definitions.tsv"))


def read_dictionary_table(path: Path) -> dict[str, list[str]]:
    """``entry -> definitions`` from a TSV with the columns ``entry`` and ``definition``."""
    if not path.is_file():
        raise InputError(f"dictionary file {str(path)!r} does not exist")
    out: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or not {"entry", "definition"} <= set(reader.fieldnames):
            raise InputError(f"{str(path)!r} needs a header with the columns entry and definition; found {reader.fieldnames}")
        for n, row in enumerate(reader, start=2):
            if not row["entry"] or not row["definition"]:
                raise InputError(f"{str(path)!r} line {n}: empty entry or definition")
            defs = out.setdefault(row["entry"], [])
            if row["definition"] not in defs:
                defs.append(row["definition"])
    return out


def load_dictionary(config: DictionaryConfig) -> list[tuple[str, list[str]]]:
    """The entries (index = position) with their definitions."""
    if config.source == "wordnet":
        folder = Path(str(config.path))
        if not (folder / "data.noun").is_file():
            raise InputError(
                f"{str(folder)!r} is not a WordNet 3.0 database folder (no data.noun)",
                hint="install Debian's wordnet-base (/usr/share/wordnet) or use source: wordnet-subset",
            )
        table = read_dictionary(folder, tuple(config.pos))
    else:
        table = read_dictionary_table(packaged_dictionary() if config.source == "wordnet-subset" else Path(str(config.path)))
    items = [(e, d) for e, d in table.items() if d]
    if config.limit is not None and config.limit < len(items):
        keep = sorted(np.random.default_rng(config.seed).permutation(len(items))[: config.limit])
        items = [items[int(i)] for i in keep]
    if len(items) < 2:
        raise InputError("the dictionary holds fewer than two entries with a definition")
    return items


def entry_matrix(
    dictionary: Sequence[tuple[str, Sequence[str]]], embed: Callable[[list[str]], Tensor], batch_size: int = 64
) -> Tensor:
    """``E[e] = (1/m_e) Σ_j embed(d_ej)``: the mean of the embeddings of each entry's definitions."""
    texts = [d for _, defs in dictionary for d in defs]
    owner = torch.tensor([i for i, (_, defs) in enumerate(dictionary) for _ in defs])
    chunks = [embed(texts[i : i + batch_size]).detach().float() for i in range(0, len(texts), batch_size)]
    pooled = torch.cat(chunks)
    sums = torch.zeros(len(dictionary), pooled.shape[1], dtype=pooled.dtype, device=pooled.device)
    sums.index_add_(0, owner.to(pooled.device), pooled)
    counts = torch.bincount(owner, minlength=len(dictionary)).to(pooled)
    return sums / counts[:, None]


def isotropy(matrix: Tensor, sample: int = 2000, seed: int = 0) -> float:
    """Mean pairwise cosine of (a seeded sample of) the rows: lower is more isotropic, 0 for random directions."""
    m = matrix.float()
    if m.shape[0] > sample:
        g = torch.Generator().manual_seed(seed)
        m = m[torch.randperm(m.shape[0], generator=g)[:sample].to(m.device)]
    x = torch.nn.functional.normalize(m, dim=-1)
    sim = x @ x.T
    n = sim.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))
