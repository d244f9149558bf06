"""``orma.chebi20``: ChEBI-20 text-molecule pairs (and molecules alone) for repmix.

Files (``path`` is a folder, relative to the working directory; see
``shared/data/chebi20/SOURCE.md``):

* ``validation.tsv`` (MolT5 text, "The molecule is ...") or
  ``validation_text2mol_names.tsv`` (Text2Mol's name-first text, which ORMA
  trained on), chosen by ``descriptions: molt5 | text2mol``: 3,301 described
  pairs, columns ``cid``, ``smiles``, ``description``;
* ``train_molecules.tsv``: 26,407 molecules without text (``cid``, ``smiles``).

The ChEBI-20 train descriptions and test split are not available here, so the
described pairs are split deterministically into ``train`` and ``test``:
every CID gets the SHA-256 of ``"<holdout_seed>:<cid>"``; the
``round(holdout × n)`` CIDs with the smallest hashes form ``test``, the rest
``train``. The split depends on the CIDs only (not on row order, filtering or
``limit``), and the same CID stays on the same side when rows are added.
``all`` serves every described pair, ``extra`` the molecules of
``train_molecules.tsv`` alone (a column for the molecule tower only), meant
as extra retrieval candidates::

    evaluate:
      type: retrieval
      split: test
      extra_candidates: {type: orma.chebi20, path: ..., split: extra}

Rows: tab-separated with quoting off, header required. Molecules without
bonds (single atoms, salts of single ions) are dropped as ORMA does
(``drop_bondless``), counted in ``Examples.skipped`` and described in
``Examples.notes``. An unreadable SMILES raises :class:`InputError` naming
the file and line (``on_error: raise``), or is skipped and counted
(``on_error: skip``). Checking SMILES costs an RDKit parse per molecule; its
result (atom and bond counts, or the reason a SMILES is invalid) is cached on
disk per file content, so a second load does no RDKit work.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    Dataset,
    Examples,
    InputError,
    Runtime,
    did_you_mean,
)
from repmix.sdk.tables import MAX_NOTED, BadRows, read_table

__all__ = [
    "ChEBI20Config",
    "ChEBI20Dataset",
    "SmilesSummary",
    "hash_holdout",
    "smiles_summary",
]

#: Files of the described pairs, by ``descriptions``.
PAIR_FILES: dict[str, str] = {"molt5": "validation.tsv", "text2mol": "validation_text2mol_names.tsv"}


# ------------------------------------------------------------------------ SMILES checks
@dataclass
class SmilesSummary:
    """RDKit's verdict on a list of SMILES: atom and bond counts, or why each is unreadable."""

    atoms: np.ndarray  # int64, -1 when invalid
    bonds: np.ndarray  # int64, -1 when invalid
    reasons: list[str]  # "" when valid


def _summarise(smiles: list[str]) -> SmilesSummary:
    from repmix_orma.graph import parse_smiles

    atoms = np.full(len(smiles), -1, dtype=np.int64)
    bonds = np.full(len(smiles), -1, dtype=np.int64)
    reasons = [""] * len(smiles)
    for i, s in enumerate(smiles):
        mol, reason = parse_smiles(s)
        if mol is None:
            reasons[i] = reason or "invalid SMILES"
        else:
            atoms[i], bonds[i] = mol.GetNumAtoms(), mol.GetNumBonds()
    return SmilesSummary(atoms, bonds, reasons)


def smiles_summary(smiles: list[str], cache_dir: Path | None) -> SmilesSummary:
    """:func:`_summarise`, cached on disk (``.npz``, no pickle) under a hash of the SMILES list and RDKit's version."""
    if cache_dir is None:
        return _summarise(smiles)
    from rdkit import rdBase

    digest = hashlib.sha256()
    digest.update(f"rdkit {rdBase.rdkitVersion}\n".encode())
    for s in smiles:
        digest.update(s.encode("utf-8") + b"\n")
    path = cache_dir / f"{digest.hexdigest()}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            summary = SmilesSummary(stored["atoms"], stored["bonds"], [str(r) for r in stored["reasons"]])
        if len(summary.atoms) == len(smiles) == len(summary.reasons) == len(summary.bonds):
            return summary
    except (OSError, ValueError, KeyError):
        pass
    summary = _summarise(smiles)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cache_dir)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, atoms=summary.atoms, bonds=summary.bonds, reasons=np.asarray(summary.reasons, dtype=str))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time
    return summary


# ------------------------------------------------------------------------------ holdout
def hash_holdout(ids: list[str], holdout: float, seed: int) -> set[str]:
    """The held-out ids: the ``round(holdout × n)`` ids with the smallest SHA-256 of ``"<seed>:<id>"``."""
    k = round(holdout * len(ids))
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return set(ranked[:k])


# ------------------------------------------------------------------------------ dataset
class ChEBI20Config(ComponentConfig):
    """Options of ``orma.chebi20``."""

    path: str = Field(description="folder holding validation.tsv, validation_text2mol_names.tsv, train_molecules.tsv")
    split: Literal["train", "test", "all", "extra"] = Field(
        "train", description="train / test (the held-out pairs), all pairs, or extra (molecules without text)"
    )
    descriptions: Literal["molt5", "text2mol"] = Field(
        "molt5", description="molt5: 'The molecule is ...' (validation.tsv); text2mol: name-first text, as ORMA used"
    )
    pairs_file: str | None = Field(None, description="file of the described pairs, overriding 'descriptions'")
    molecules_file: str = Field("train_molecules.tsv", description="file of the molecules without text (split extra)")
    fields: dict[str, str] = Field(
        default_factory=lambda: {"text": "description", "molecule": "smiles"},
        description="tower name -> column",
        min_length=1,
    )
    smiles_column: str = Field("smiles", description="the column holding SMILES (checked with RDKit)")
    id_column: str = Field("cid", description="the column of identifiers (Examples.ids, holdout hashing)")
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="fraction of described pairs held out as 'test'")
    holdout_seed: int = Field(0, description="seed of the CID hashing that picks the held-out pairs")
    drop_bondless: bool = Field(True, description="drop molecules without bonds, as ORMA does")
    limit: int | None = Field(None, ge=1, description="keep at most this many rows of the split (seeded choice)")
    subset_seed: int = Field(0, description="seed of the rows 'limit' keeps")
    on_error: Literal["raise", "skip"] = Field("raise", description="unreadable rows: raise, or skip and count")
    cache_dir: str | None = Field(None, description="where SMILES checks are cached (default: the orma cache)")

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        if len(set(v.values())) != len(v):
            raise ValueError("fields must map each tower to a different column")
        return v

    @model_validator(mode="after")
    def _smiles_field(self) -> ChEBI20Config:
        if self.smiles_column not in self.fields.values():
            raise ValueError(
                f"smiles_column {self.smiles_column!r} must be one of the fields' columns "
                f"({', '.join(self.fields.values())}), e.g. fields: {{molecule: {self.smiles_column}}}"
            )
        return self


class ChEBI20Dataset(Dataset):
    """ChEBI-20 described pairs split by CID hashing, plus the undescribed train molecules."""

    Config: ClassVar[type[ComponentConfig]] = ChEBI20Config
    citation: ClassVar[str] = (
        "Edwards, Zhai and Ji. Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries. "
        "EMNLP 2021. Edwards, Lu, Hope, Han, Cho and Ji. Translation between Molecules and Natural "
        "Language (MolT5). EMNLP 2022."
    )
    config: ChEBI20Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def _folder(self) -> Path:
        p = Path(self.config.path).expanduser()
        if not p.is_dir():
            raise InputError(
                f"ChEBI-20 folder {self.config.path!r} "
                + ("is not a folder" if p.exists() else f"does not exist (resolved to {p.resolve()})"),
                hint="path: the folder with validation.tsv and train_molecules.tsv "
                "(relative paths are relative to the current working directory)",
            )
        return p

    def _cache(self) -> Path | None:
        from repmix_orma.graph import default_cache_dir

        c = self.config
        return (Path(c.cache_dir).expanduser() if c.cache_dir else default_cache_dir()) / "smiles-checks"

    def load(self, split: str | None = None) -> Examples:
        """Load ``split`` (default: the configured one): train, test, all or extra."""
        c = self.config
        split = split or c.split
        allowed = ("train", "test", "all", "extra")
        if split not in allowed:
            guess = did_you_mean(split, allowed)
            raise InputError(
                f"orma.chebi20 has no split {split!r}; splits: {', '.join(allowed)}"
                + (f" (did you mean {guess!r}?)" if guess else "")
            )
        if split == "test" and c.holdout == 0:
            raise InputError("split 'test' is empty with holdout: 0", hint="set holdout, e.g. 0.2")
        folder = self._folder()
        problems = BadRows(c.on_error)
        notes: list[str] = []
        if split == "extra":
            path = folder / c.molecules_file
            others = [col for col in [*c.fields.values(), c.id_column] if col != c.smiles_column]
            table = read_table(path, [c.smiles_column], optional=others, fmt="tsv", bad_rows=problems)
            towers = {t: col for t, col in c.fields.items() if col in table.header}
            rows = file_rows = table.rows
        else:
            path = folder / (c.pairs_file or PAIR_FILES[c.descriptions])
            towers = dict(c.fields)
            columns_wanted = list(dict.fromkeys([*towers.values(), c.id_column]))
            table = read_table(path, columns_wanted, fmt="tsv", bad_rows=problems)
            rows = file_rows = table.rows
            if split in ("train", "test"):
                ids = [r.values[c.id_column] for r in rows]
                dupes = len(ids) - len(set(ids))
                if dupes:
                    raise InputError(f"{path}: {dupes} duplicate value(s) in column {c.id_column!r}; ids must be unique")
                held = hash_holdout(ids, c.holdout, c.holdout_seed)
                rows = [r for r in rows if (r.values[c.id_column] in held) == (split == "test")]
                notes.append(
                    f"holdout {c.holdout} (holdout_seed {c.holdout_seed}, by CID hash): {len(held)} of {len(ids)} "
                    f"pairs held out as 'test', {len(ids) - len(held)} in 'train'; this is {split!r}"
                )
        # Rows are checked with RDKit in a seeded order; with 'limit' only until enough usable rows are found.
        order = (
            [int(i) for i in np.random.default_rng(c.subset_seed).permutation(len(rows))]
            if c.limit is not None and c.limit < len(rows)
            else list(range(len(rows)))
        )
        wanted = len(rows) if c.limit is None else c.limit
        kept_index: list[int] = []
        bondless: list[str] = []
        examined = 0
        if c.limit is None:
            # one cached check of the whole file, shared by the train, test and all splits
            file_summary = smiles_summary([r.values[c.smiles_column] for r in file_rows], self._cache())
            position = {id(r): i for i, r in enumerate(file_rows)}
            at = [position[id(r)] for r in rows]
            summary = SmilesSummary(file_summary.atoms[at], file_summary.bonds[at], [file_summary.reasons[i] for i in at])
        while len(kept_index) < wanted and examined < len(order):
            block = order[examined : examined + max(64, 2 * (wanted - len(kept_index)))]
            examined += len(block)
            if c.limit is not None:
                summary = smiles_summary([rows[i].values[c.smiles_column] for i in block], self._cache())
            for j, i in enumerate(block):
                row = rows[i]
                k = j if c.limit is not None else i
                if summary.reasons[k]:
                    problems.report(path, row.line, summary.reasons[k])
                elif c.drop_bondless and summary.bonds[k] == 0:
                    bondless.append(f"{path.name}:{row.line} ({row.values[c.smiles_column]})")
                elif len(kept_index) < wanted:
                    kept_index.append(i)
        kept = [rows[i] for i in sorted(kept_index)]
        notes = problems.notes() + notes
        if bondless:
            shown = ", ".join(bondless[:MAX_NOTED]) + (", ..." if len(bondless) > MAX_NOTED else "")
            notes.append(f"dropped {len(bondless)} molecule(s) without bonds, as ORMA does (drop_bondless): {shown}")
        if examined < len(rows) or (c.limit is not None and c.limit < len(rows)):
            notes.append(
                f"limit {c.limit} (subset_seed {c.subset_seed}): kept {len(kept)} rows of {len(rows)}, "
                f"checking {examined} of them in a seeded order"
            )
        if not kept:
            raise InputError(f"{path}: split {split!r} has no usable rows", hint="; ".join(notes) or None)
        columns = {t: [r.values[col] for r in kept] for t, col in towers.items()}
        ids = [r.values[c.id_column] for r in kept] if c.id_column in table.header else None
        return Examples(columns, None, ids, skipped=problems.count + len(bondless), notes=notes)
