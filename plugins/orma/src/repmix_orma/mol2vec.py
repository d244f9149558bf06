"""mol2vec: word2vec embeddings of Morgan substructure identifiers, trained with gensim.

mol2vec (Jaeger, Fulle and Turk, J. Chem. Inf. Model. 2018) treats a molecule
as a sentence whose words are its atoms' Morgan identifiers at radius 0 and 1,
atom by atom (``mol2alt_sentence``: for each atom in index order, its radius-0
identifier, then its radius-1 identifier, each only when RDKit kept that
environment), replaces identifiers seen fewer than ``min_count`` times by
``UNK`` and trains a skip-gram word2vec (300 dimensions, window 10). ORMA feeds
each atom the mol2vec vector of its identifier, with UNK as the fallback.

This module builds those sentences with RDKit's ``rdFingerprintGenerator``
(the identifiers equal the legacy ``AllChem.GetMorganFingerprint`` bit ids,
tested), trains with gensim deterministically for a seed (one worker, a
stable hash for the initial vectors instead of Python's salted ``hash``), and
saves a table without pickles (safetensors):

* ``vectors`` float32 [V, D]: row 0 is UNK;
* ``identifiers`` int64 [V]: the Morgan identifier of each row (-1 for UNK);
* ``counts`` int64 [V]: occurrences in the training sentences;
* metadata: format, radius, dimensions, window, min_count, epochs, seed,
  molecules, skipped.

:class:`Mol2VecTable` reads it back and looks atoms up.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from repmix.sdk import ArtifactError, InputError

__all__ = [
    "FORMAT",
    "UNK",
    "Mol2VecTable",
    "atom_identifiers",
    "mol2vec_sentence",
    "train_mol2vec",
]

FORMAT = "repmix-orma-mol2vec/1"
UNK = "UNK"


def _stable_hash(text: str) -> int:
    """A process-independent hash (gensim seeds each word's initial vector with ``hashfxn(word + seed)``)."""
    return zlib.crc32(text.encode("utf-8"))


def atom_identifiers(mol: Any, radius: int = 1) -> list[dict[int, int]]:
    """For each atom, ``{radius: Morgan identifier}`` for radius 0..``radius`` (RDKit's bit-info map).

    An atom lacks a radius when RDKit dropped that environment as a duplicate
    of another one (as mol2vec's ``mol2alt_sentence`` sees it).
    """
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius)
    out = rdFingerprintGenerator.AdditionalOutput()
    out.AllocateBitInfoMap()
    gen.GetSparseCountFingerprint(mol, additionalOutput=out)
    per_atom: list[dict[int, int]] = [{} for _ in range(mol.GetNumAtoms())]
    for identifier, places in out.GetBitInfoMap().items():
        for atom, r in places:
            per_atom[atom][r] = int(identifier)
    return per_atom


def mol2vec_sentence(mol: Any, radius: int = 1) -> list[str]:
    """mol2vec's alternating sentence: atom by atom, its identifiers of radius 0..``radius``."""
    return [str(ids[r]) for ids in atom_identifiers(mol, radius) for r in range(radius + 1) if r in ids]


@dataclass
class Mol2VecTable:
    """A trained mol2vec table: identifier -> vector, with an UNK row."""

    vectors: np.ndarray
    identifiers: np.ndarray
    counts: np.ndarray
    metadata: dict[str, str]

    def __post_init__(self) -> None:
        self._row = {int(i): r for r, i in enumerate(self.identifiers.tolist()) if i >= 0}
        unk = np.flatnonzero(self.identifiers < 0)
        if len(unk) != 1:
            raise ArtifactError("a mol2vec table needs exactly one UNK row (identifier -1)")
        self.unk_row = int(unk[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def radius(self) -> int:
        return int(self.metadata.get("radius", "1"))

    def row(self, identifier: int | None) -> int:
        """The row of ``identifier``; the UNK row when unknown or ``None``."""
        if identifier is None:
            return self.unk_row
        return self._row.get(int(identifier), self.unk_row)

    def atom_rows(self, mol: Any, radius: int | None = None, buckets: int = 0) -> np.ndarray:
        """Each atom's row: its identifier at ``radius`` (default the table's), else its radius-0 one, else UNK.

        With ``buckets > 0`` an atom none of whose identifiers is in the table
        gets row ``len(table) + crc32(identifier) % buckets`` instead of UNK,
        hashed from its largest-radius identifier: rows a learned embedding
        (``atom_features: identifiers``) can tell apart, where UNK merges them.
        """
        r = self.radius if radius is None else radius
        rows = []
        for ids in atom_identifiers(mol, r):
            row = self.unk_row
            for rr in range(r, -1, -1):
                if rr in ids and int(ids[rr]) in self._row:
                    row = self._row[int(ids[rr])]
                    break
            else:
                if buckets > 0 and ids:
                    row = len(self.identifiers) + _stable_hash(str(ids[max(ids)])) % buckets
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def atom_vectors(self, mol: Any, radius: int | None = None) -> np.ndarray:
        """Each atom's vector [n_atoms, D] (see :meth:`atom_rows`)."""
        return self.vectors[self.atom_rows(mol, radius)]

    def save(self, path: str | Path) -> Path:
        """Write the table as safetensors (no pickle)."""
        from safetensors.numpy import save_file

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".tmp-{out.name}")
        save_file(
            {
                "vectors": np.ascontiguousarray(self.vectors, dtype=np.float32),
                "identifiers": np.ascontiguousarray(self.identifiers, dtype=np.int64),
                "counts": np.ascontiguousarray(self.counts, dtype=np.int64),
            },
            str(tmp),
            metadata={"format": FORMAT, **self.metadata},
        )
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> Mol2VecTable:
        """Read a table written by :meth:`save`; :class:`ArtifactError` when it is not one."""
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise ArtifactError(
                f"mol2vec file {str(p)!r} does not exist",
                hint="train one with: repmix orma mol2vec --molecules FILE... -o atoms.safetensors",
            )
        try:
            with safe_open(str(p), framework="numpy") as handle:
                meta = dict(handle.metadata() or {})
                arrays = {k: handle.get_tensor(k) for k in ("vectors", "identifiers", "counts")}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            raise ArtifactError(f"{str(p)!r} is not a mol2vec table: {exc}") from None
        if meta.get("format") != FORMAT:
            raise ArtifactError(f"{str(p)!r} is not a mol2vec table (format {meta.get('format')!r}, expected {FORMAT!r})")
        meta.pop("format")
        vectors = arrays["vectors"]
        if vectors.ndim != 2 or arrays["identifiers"].shape != (vectors.shape[0],):
            raise ArtifactError(f"{str(p)!r}: inconsistent mol2vec arrays")
        return cls(vectors.astype(np.float32), arrays["identifiers"], arrays["counts"], meta)


def train_mol2vec(
    smiles: Iterable[str],
    *,
    radius: int = 1,
    dim: int = 300,
    window: int = 10,
    min_count: int = 3,
    epochs: int = 5,
    seed: int = 0,
    negative: int = 5,
) -> tuple[Mol2VecTable, list[str]]:
    """Train mol2vec on ``smiles``; returns the table and the reasons of SMILES skipped (unreadable).

    Identifiers seen fewer than ``min_count`` times become UNK (mol2vec's
    ``insert_unk``); word2vec is skip-gram with one worker, so the result is a
    function of the molecules (in order) and ``seed``.
    """
    from gensim.models import Word2Vec

    from repmix_orma.graph import parse_smiles

    sentences: list[list[str]] = []
    skipped: list[str] = []
    for i, s in enumerate(smiles):
        mol, reason = parse_smiles(s)
        if mol is None:
            skipped.append(f"molecule {i + 1}: {reason}")
            continue
        sentences.append(mol2vec_sentence(mol, radius))
    if not sentences:
        raise InputError("mol2vec: no readable molecule to train on")
    counts = Counter(w for sent in sentences for w in sent)
    rare = {w for w, c in counts.items() if c < min_count}
    corpus = [[UNK if w in rare else w for w in sent] for sent in sentences]
    corpus = [s for s in corpus if s]
    model = Word2Vec(
        vector_size=dim,
        window=window,
        min_count=1,
        sg=1,
        negative=negative,
        workers=1,
        seed=seed,
        hashfxn=_stable_hash,
        epochs=epochs,
    )
    model.build_vocab(corpus)
    model.train(corpus, total_examples=len(corpus), epochs=epochs)
    words = list(model.wv.index_to_key)
    word_counts = Counter(w for sent in corpus for w in sent)
    if UNK not in words:  # every identifier frequent: UNK gets the mean vector
        unk_vector = model.wv.vectors.mean(axis=0, keepdims=True)
        vectors = np.concatenate([unk_vector, model.wv.vectors])
        words = [UNK, *words]
    else:
        order = [words.index(UNK)] + [i for i, w in enumerate(words) if w != UNK]
        vectors = model.wv.vectors[order]
        words = [words[i] for i in order]
    identifiers = np.array([-1 if w == UNK else int(w) for w in words], dtype=np.int64)
    table = Mol2VecTable(
        vectors.astype(np.float32),
        identifiers,
        np.array([word_counts.get(w, 0) for w in words], dtype=np.int64),
        {
            "radius": str(radius),
            "dim": str(dim),
            "window": str(window),
            "min_count": str(min_count),
            "epochs": str(epochs),
            "negative": str(negative),
            "seed": str(seed),
            "molecules": str(len(sentences)),
            "skipped": str(len(skipped)),
            "method": "skip-gram word2vec (gensim) over Morgan identifiers, mol2vec's alternating sentences",
        },
    )
    return table, skipped


def read_smiles_files(paths: Sequence[str | Path], column: str = "smiles") -> tuple[list[str], list[str]]:
    """SMILES from TSV files (header with a ``column`` column) or ``.smi`` files; returns (smiles, notes)."""
    from repmix_orma.library import read_library

    smiles: list[str] = []
    notes: list[str] = []
    for p in paths:
        lib = read_library(p, smiles_column=column, validate=False)
        smiles.extend(lib.smiles)
        notes.extend(lib.notes)
    return smiles, notes
