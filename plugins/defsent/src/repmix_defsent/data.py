"""``defsent.definitions``: (definition, headword) pairs labelled by the entry index.

Each definition of each entry is one example: the definition feeds the first tower (``columns[0]``,
default ``query``), the headword the second (default ``document``; DefSent's loss does not use it,
but a repmix alignment is only computed when both of its towers are fed), and the target is the
entry's index in the dictionary, the class ``defsent.defsent`` predicts. Definitions are split
into train and dev by a seeded permutation (``dev_fraction``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime
from repmix_defsent import CITATION
from repmix_defsent.entries import DictionaryConfig, load_dictionary


class DefinitionsConfig(ComponentConfig):
    """Options of ``defsent.definitions``."""

    dictionary: DictionaryConfig = Field(
        default_factory=DictionaryConfig, description="entries and definitions; must equal the loss's dictionary block"
    )
    split: Literal["train", "dev", "all"] = Field("train", description="the split load() reads when no other is asked for")
    dev_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of definitions held out as dev")
    columns: tuple[str, str] = Field(("query", "document"), description="towers fed the definition and the headword")
    limit: int | None = Field(None, ge=1, description="keep N definitions (a seeded draw, in order)")
    seed: int = Field(0, description="seed of the dev split and the limit draw")


class DefinitionsDataset(Dataset):
    """Definitions with their entry index as target (see the module docstring)."""

    citation: ClassVar[str] = CITATION
    Config: ClassVar[type[ComponentConfig]] = DefinitionsConfig
    config: DefinitionsConfig

    def __init__(self, config: DefinitionsConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        split = split or c.split
        if split not in ("train", "dev", "all"):
            raise InputError(f"defsent.definitions has the splits train, dev and all, not {split!r}")
        rows = [(d, e, float(i)) for i, (e, defs) in enumerate(load_dictionary(c.dictionary)) for d in defs]
        perm = np.random.default_rng(c.seed).permutation(len(rows))
        n_dev = int(round(c.dev_fraction * len(rows)))
        if split != "all":
            chosen = perm[:n_dev] if split == "dev" else perm[n_dev:]
            rows = [rows[int(i)] for i in sorted(chosen)]
        if c.limit is not None and c.limit < len(rows):
            keep = sorted(np.random.default_rng(c.seed + 1).permutation(len(rows))[: c.limit])
            rows = [rows[int(i)] for i in keep]
        if not rows:
            raise InputError(f"defsent.definitions: the {split} split holds no definition")
        a, b = c.columns
        return Examples({a: [r[0] for r in rows], b: [r[1] for r in rows]}, [r[2] for r in rows],
                        notes=[f"{len(rows)} definitions ({split})"])
