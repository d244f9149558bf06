"""``babelbert.synonym-pairs``: pairs of words of one synonym set, labelled by the set.

BabelBERT fills each batch with words of BabelNet synsets and labels each word by its synset. The
repmix engine draws examples at random, so a synset's words would rarely meet in a batch; this
dataset therefore yields *pairs* (anchor, synonym) of one synset, fed to two towers (usually one
shared text tower), with the synset's index as the target: every batch holds at least one positive
per row, and ``babelbert.nt-xent`` also counts any other same-synset items as positives.

Sources (``source``):

* ``wordnet-subset`` (default): the packaged subset of Princeton WordNet 3.0 synsets
  (6,449 synsets, 16,455 lemmas; ``scripts/make_wordnet_subset.py``);
* ``wordnet``: a WordNet 3.0 database folder (``path``; Debian's ``wordnet-base``: ``/usr/share/wordnet``);
* ``tsv``: a file with a header and the columns ``synset`` and ``lemma`` (``path``).

Each synset with m ≥ 2 words gives the pairs (w_i, w_{i+1 mod m}) (m pairs; 1 when m = 2). Synsets
are split into train and dev by a seeded permutation (``dev_fraction``), so a dev word's synset
was never seen in training.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime
from repmix_babelbert import CITATION
from repmix_babelbert.wordnet import read_synsets


def packaged_synsets() -> Path:
    """The packaged WordNet subset (TSV: synset, lemma)."""
    return Path(str(resources.files("repmix_babelbert") / "data" / "wordnet-synsets.tsv"))


def read_synset_table(path: Path) -> dict[str, list[str]]:
    """``synset -> lemmas`` from a TSV with the columns ``synset`` and ``lemma`` (file order)."""
    if not path.is_file():
        raise InputError(f"synonym file {str(path)!r} does not exist")
    out: dict[str, list[str]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or not {"synset", "lemma"} <= set(reader.fieldnames):
            raise InputError(f"{str(path)!r} needs a header with the columns synset and lemma; found {reader.fieldnames}")
        for n, row in enumerate(reader, start=2):
            if not row["synset"] or not row["lemma"]:
                raise InputError(f"{str(path)!r} line {n}: empty synset or lemma")
            if row["lemma"] not in out[row["synset"]]:
                out[row["synset"]].append(row["lemma"])
    return dict(out)


class SynonymPairsConfig(ComponentConfig):
    """Options of ``babelbert.synonym-pairs``."""

    source: Literal["wordnet-subset", "wordnet", "tsv"] = Field(
        "wordnet-subset", description="the packaged WordNet subset, a WordNet 3.0 dict folder, or a TSV (synset, lemma)"
    )
    path: str | None = Field(None, description="the WordNet folder (source: wordnet) or the TSV file (source: tsv)")
    pos: list[Literal["noun", "verb", "adj", "adv"]] = Field(
        default_factory=lambda: ["noun", "verb", "adj", "adv"], description="parts of speech read (source: wordnet)"
    )
    split: Literal["train", "dev"] = Field("train", description="the split load() reads when no other is asked for")
    dev_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of synsets held out as the dev split")
    columns: tuple[str, str] = Field(("query", "document"), description="the two towers fed the anchor and the synonym")
    limit: int | None = Field(None, ge=1, description="keep N pairs (a seeded draw, in order)")
    seed: int = Field(0, description="seed of the train/dev split and of the limit draw")

    @model_validator(mode="after")
    def _path_given(self) -> SynonymPairsConfig:
        if self.source != "wordnet-subset" and not self.path:
            raise ValueError(f"source {self.source!r} needs 'path'")
        return self


class SynonymPairsDataset(Dataset):
    """(anchor, synonym) pairs labelled by their synset (see the module docstring)."""

    citation: ClassVar[str] = CITATION
    Config: ClassVar[type[ComponentConfig]] = SynonymPairsConfig
    config: SynonymPairsConfig

    def __init__(self, config: SynonymPairsConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def synsets(self) -> dict[str, list[str]]:
        """Every synset with at least two distinct lemmas, in source order."""
        c = self.config
        if c.source == "wordnet":
            folder = Path(str(c.path))
            if not (folder / "data.noun").is_file():
                raise InputError(
                    f"{str(folder)!r} is not a WordNet 3.0 database folder (no data.noun)",
                    hint="install Debian's wordnet-base (/usr/share/wordnet) or use source: wordnet-subset",
                )
            table = {sid: lemmas for sid, lemmas, _ in read_synsets(folder, tuple(c.pos))}
        else:
            table = read_synset_table(packaged_synsets() if c.source == "wordnet-subset" else Path(str(c.path)))
        return {sid: words for sid, words in table.items() if len(words) >= 2}

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        split = split or c.split
        if split not in ("train", "dev"):
            raise InputError(f"synonym-pairs has the splits train and dev, not {split!r}")
        synsets = self.synsets()
        ids = list(synsets)
        perm = np.random.default_rng(c.seed).permutation(len(ids))
        n_dev = int(round(c.dev_fraction * len(ids)))
        chosen = sorted(perm[:n_dev] if split == "dev" else perm[n_dev:])
        anchors: list[str] = []
        synonyms: list[str] = []
        labels: list[float] = []
        for label in chosen:
            words = synsets[ids[int(label)]]
            for i in range(len(words) if len(words) > 2 else 1):
                anchors.append(words[i])
                synonyms.append(words[(i + 1) % len(words)])
                labels.append(float(label))
        if c.limit is not None and c.limit < len(anchors):
            keep = sorted(np.random.default_rng(c.seed).permutation(len(anchors))[: c.limit])
            anchors, synonyms, labels = ([x[int(i)] for i in keep] for x in (anchors, synonyms, labels))
        if not anchors:
            raise InputError(f"synonym-pairs: the {split} split holds no pair")
        a, b = c.columns
        return Examples(
            {a: anchors, b: synonyms}, labels, notes=[f"{len(chosen)} synsets, {len(anchors)} pairs ({split})"]
        )
