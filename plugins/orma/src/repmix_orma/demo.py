"""``orma.demo-molecules``: a generated text-molecule data set that needs no files.

:func:`generate` builds molecules with RDKit by attaching substituents
(functional groups and small rings) to ring scaffolds at distinct numbered
positions, and writes each one's description from its parts::

    The molecule is a pyridine carrying a chloro group at position 2 and a
    carboxy group at position 5. It is a member of pyridines, an
    organochlorine compound and a carboxylic acid.

Molecules are unique by canonical SMILES (symmetric placements collapse to
one molecule, the first description generated is kept) and descriptions are
unique too. The output depends only on ``seed``, ``size``, ``max_substituents``
and ``positions`` (and RDKit's canonical SMILES): generating is done once and
written to ``<cache>/demo-molecules/<key>.tsv``; later loads read that file.

Splits: ``train`` and ``test`` (a seeded permutation's first
``round(test_fraction × size)`` molecules), or ``all``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator
from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime

__all__ = ["SCAFFOLDS", "SUBSTITUENTS", "DemoMolecule", "DemoMoleculesConfig", "DemoMoleculesDataset", "generate"]

#: Bumped whenever the generator changes; part of the cache key.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Scaffold:
    """A ring system; atom-map numbers mark its numbered positions that carry a hydrogen."""

    name: str
    plural: str
    smiles: str


@dataclass(frozen=True)
class Substituent:
    """A group attached through its first atom, with the compound class it makes."""

    name: str
    smiles: str
    compound_class: str | None


SCAFFOLDS: tuple[Scaffold, ...] = (
    Scaffold("benzene", "benzenes", "[cH:1]1[cH:2][cH:3][cH:4][cH:5][cH:6]1"),
    Scaffold("pyridine", "pyridines", "n1[cH:2][cH:3][cH:4][cH:5][cH:6]1"),
    Scaffold("pyrimidine", "pyrimidines", "n1[cH:2]n[cH:4][cH:5][cH:6]1"),
    Scaffold("pyrazine", "pyrazines", "n1[cH:2][cH:3]n[cH:5][cH:6]1"),
    Scaffold("furan", "furans", "o1[cH:2][cH:3][cH:4][cH:5]1"),
    Scaffold("thiophene", "thiophenes", "s1[cH:2][cH:3][cH:4][cH:5]1"),
    Scaffold("pyrrole", "pyrroles", "[nH:1]1[cH:2][cH:3][cH:4][cH:5]1"),
    Scaffold("thiazole", "thiazoles", "s1[cH:2]n[cH:4][cH:5]1"),
    Scaffold("imidazole", "imidazoles", "[nH:1]1[cH:2]n[cH:4][cH:5]1"),
    Scaffold("cyclohexane", "cyclohexanes", "[CH2:1]1[CH2:2][CH2:3][CH2:4][CH2:5][CH2:6]1"),
    Scaffold("cyclopentane", "cyclopentanes", "[CH2:1]1[CH2:2][CH2:3][CH2:4][CH2:5]1"),
    Scaffold("piperidine", "piperidines", "[NH:1]1[CH2:2][CH2:3][CH2:4][CH2:5][CH2:6]1"),
    Scaffold("oxolane", "oxolanes", "O1[CH2:2][CH2:3][CH2:4][CH2:5]1"),
    Scaffold("morpholine", "morpholines", "O1[CH2:2][CH2:3][NH:4][CH2:5][CH2:6]1"),
    Scaffold("naphthalene", "naphthalenes", "[cH:1]1[cH:2][cH:3][cH:4]c2[cH:5][cH:6][cH:7][cH:8]c12"),
    Scaffold("indole", "indoles", "[nH:1]1[cH:2][cH:3]c2[cH:4][cH:5][cH:6][cH:7]c12"),
    Scaffold("quinoline", "quinolines", "n1[cH:2][cH:3][cH:4]c2[cH:5][cH:6][cH:7][cH:8]c12"),
)

SUBSTITUENTS: tuple[Substituent, ...] = (
    Substituent("carboxy", "C(=O)O", "carboxylic acid"),
    Substituent("hydroxy", "O", None),
    Substituent("amino", "N", "primary amino compound"),
    Substituent("chloro", "Cl", "organochlorine compound"),
    Substituent("bromo", "Br", "organobromine compound"),
    Substituent("fluoro", "F", "organofluorine compound"),
    Substituent("iodo", "I", "organoiodine compound"),
    Substituent("nitro", "[N+](=O)[O-]", "C-nitro compound"),
    Substituent("methyl", "C", None),
    Substituent("ethyl", "CC", None),
    Substituent("isopropyl", "C(C)C", None),
    Substituent("tert-butyl", "C(C)(C)C", None),
    Substituent("methoxy", "OC", "ether"),
    Substituent("cyano", "C#N", "nitrile"),
    Substituent("trifluoromethyl", "C(F)(F)F", "organofluorine compound"),
    Substituent("acetyl", "C(C)=O", "ketone"),
    Substituent("formyl", "C=O", "aldehyde"),
    Substituent("carbamoyl", "C(N)=O", "primary carboxamide"),
    Substituent("sulfamoyl", "S(N)(=O)=O", "sulfonamide"),
    Substituent("sulfo", "S(=O)(=O)O", "sulfonic acid"),
    Substituent("methoxycarbonyl", "C(=O)OC", "methyl ester"),
    Substituent("sulfanyl", "S", "thiol"),
    Substituent("vinyl", "C=C", "olefinic compound"),
    Substituent("ethynyl", "C#C", "terminal acetylenic compound"),
    Substituent("hydroxymethyl", "CO", "primary alcohol"),
    Substituent("dimethylamino", "N(C)C", "tertiary amino compound"),
    Substituent("acetamido", "NC(C)=O", "acetamide"),
    Substituent("phenyl", "c1ccccc1", None),
    Substituent("phenoxy", "Oc1ccccc1", "aromatic ether"),
    Substituent("cyclopropyl", "C1CC1", "member of cyclopropanes"),
    Substituent("cyclohexyl", "C1CCCCC1", None),
    Substituent("morpholin-4-yl", "N1CCOCC1", "member of morpholines"),
    Substituent("thiophen-2-yl", "c1cccs1", "member of thiophenes"),
    Substituent("pyridin-3-yl", "c1cccnc1", "member of pyridines"),
)


@dataclass(frozen=True)
class DemoMolecule:
    """One generated pair: canonical SMILES and description, with what it was built from."""

    smiles: str
    description: str
    scaffold: str
    substituents: tuple[tuple[str, int], ...]


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(scaffold: Scaffold, placed: list[tuple[Substituent, int]], positions: bool = True) -> str:
    """The description of a scaffold carrying ``placed`` substituents (sorted by position)."""
    groups = [
        f"{_article(s.name)} {s.name} group" + (f" at position {p}" if positions else "") for s, p in placed
    ]
    text = f"The molecule is {_article(scaffold.name)} {scaffold.name} carrying {_join(groups)}."
    classes = [f"a member of {scaffold.plural}"]
    for s, _ in placed:
        if s.compound_class is None:
            continue
        phrase = s.compound_class
        phrase = f"a {phrase}" if phrase.startswith("member of") else f"{_article(phrase)} {phrase}"
        if phrase not in classes:
            classes.append(phrase)
    return f"{text} It is {_join(classes)}."


def _symmetries(mol: Any) -> list[dict[int, int]]:
    """The scaffold's symmetries as maps position -> equivalent position (identity included)."""
    from rdkit import Chem

    plain = Chem.Mol(mol)
    for atom in plain.GetAtoms():
        atom.SetAtomMapNum(0)
    number = [a.GetAtomMapNum() for a in mol.GetAtoms()]
    out = []
    for match in plain.GetSubstructMatches(plain, uniquify=False, useChirality=False):
        out.append({number[i]: number[j] for i, j in enumerate(match) if number[i]})
    return out


def _lowest_numbering(
    placed: list[tuple[Substituent, int]], symmetries: list[dict[int, int]]
) -> list[tuple[Substituent, int]]:
    """The equivalent placement with the lowest positions (ties: substituent names), sorted by position.

    So a benzene with one group says "at position 1", and the same molecule always gets the same text.
    """
    options = []
    for sym in symmetries:
        moved = sorted(((sym[p], s) for s, p in placed), key=lambda t: (t[0], t[1].name))
        if all(p for p, _ in moved):
            options.append(moved)
    best = min(options, key=lambda m: [(p, s.name) for p, s in m])
    return [(s, p) for p, s in best]


def _build(scaffold_mol: Any, sites: dict[int, int], placed: list[tuple[Substituent, int]], fragments: dict[str, Any]) -> str | None:
    """Canonical SMILES of the scaffold with ``placed`` attached, or ``None`` if RDKit rejects it."""
    from rdkit import Chem
    from rdkit.Chem.rdchem import MolSanitizeException

    rw = Chem.RWMol(scaffold_mol)
    for sub, position in placed:
        anchor = sites[position]
        offset = rw.GetNumAtoms()
        frag = fragments[sub.smiles]
        for atom in frag.GetAtoms():
            rw.AddAtom(atom)
        for bond in frag.GetBonds():
            rw.AddBond(bond.GetBeginAtomIdx() + offset, bond.GetEndAtomIdx() + offset, bond.GetBondType())
        rw.AddBond(anchor, offset, Chem.BondType.SINGLE)
        atom = rw.GetAtomWithIdx(anchor)
        atom.SetNumExplicitHs(max(0, atom.GetNumExplicitHs() - 1))
    for atom in rw.GetAtoms():
        atom.SetAtomMapNum(0)
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except MolSanitizeException:  # valence or kekulisation errors: skip this combination
        return None
    return Chem.MolToSmiles(mol)


def generate(
    size: int, seed: int = 0, max_substituents: int = 3, positions: bool = True, progress: bool | None = None
) -> list[DemoMolecule]:
    """``size`` unique molecules with descriptions, deterministic given the arguments.

    ``progress``: show a progress bar (``None``: only on a terminal).
    """
    from rdkit import Chem, rdBase
    from tqdm.auto import tqdm

    if size < 1:
        raise ValueError("size must be at least 1")
    rng = np.random.default_rng(seed)
    scaffolds = []
    for s in SCAFFOLDS:
        mol = Chem.MolFromSmiles(s.smiles)
        sites = {a.GetAtomMapNum(): a.GetIdx() for a in mol.GetAtoms() if a.GetAtomMapNum()}
        scaffolds.append((s, mol, sites, _symmetries(mol)))
    fragments = {}
    for sub in SUBSTITUENTS:
        frag = Chem.MolFromSmiles(sub.smiles)
        Chem.Kekulize(frag, clearAromaticFlags=False)
        fragments[sub.smiles] = frag
    out: list[DemoMolecule] = []
    seen_smiles: set[str] = set()
    seen_text: set[str] = set()
    counts = np.arange(1, max_substituents + 1)
    weights = 1.0 / counts
    weights /= weights.sum()
    attempts = 0
    bar = tqdm(total=size, desc="generating demo molecules", unit="mol", disable=None if progress is None else not progress)
    with rdBase.BlockLogs(), bar:
        while len(out) < size:
            attempts += 1
            if attempts > 50 * size + 1000:
                raise RuntimeError(f"could only generate {len(out)} unique molecules of the {size} asked for")
            scaffold, mol, sites, symmetries = scaffolds[int(rng.integers(len(scaffolds)))]
            k = int(min(rng.choice(counts, p=weights), len(sites)))
            chosen_positions = [int(p) for p in rng.choice(sorted(sites), size=k, replace=False)]
            subs = [SUBSTITUENTS[int(i)] for i in rng.integers(len(SUBSTITUENTS), size=k)]
            placed = _lowest_numbering(list(zip(subs, chosen_positions)), symmetries)
            smiles = _build(mol, sites, placed, fragments)
            if smiles is None or smiles in seen_smiles:
                continue
            text = describe(scaffold, placed, positions)
            if text in seen_text:
                continue
            seen_smiles.add(smiles)
            seen_text.add(text)
            out.append(DemoMolecule(smiles, text, scaffold.name, tuple((s.name, p) for s, p in placed)))
            bar.update(1)
    return out


class DemoMoleculesConfig(ComponentConfig):
    """Options of ``orma.demo-molecules``."""

    size: int = Field(2000, ge=10, le=200_000, description="number of generated pairs (train + test)")
    seed: int = Field(0, description="generator seed")
    split: Literal["train", "test", "all"] = Field("train", description="which part to serve")
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of pairs in 'test'")
    max_substituents: int = Field(3, ge=1, le=6, description="most substituents on one scaffold")
    positions: bool = Field(True, description="say where each substituent sits ('at position 3')")
    fields: dict[str, str] = Field(
        default_factory=lambda: {"text": "description", "molecule": "smiles"},
        description="tower name -> column ('description' or 'smiles')",
    )
    cache_dir: str | None = Field(None, description="where the generated TSV is kept (default: the orma cache)")

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v.values()) - {"description", "smiles"})
        if bad:
            raise ValueError(f"fields map towers to 'description' or 'smiles', got {', '.join(bad)}")
        if not v:
            raise ValueError("fields must name at least one tower")
        return v


class DemoMoleculesDataset(Dataset):
    """Generated molecule-description pairs (no files needed); see :func:`generate`."""

    Config: ClassVar[type[ComponentConfig]] = DemoMoleculesConfig
    citation: ClassVar[str] = (
        "repmix-orma demo data, generated with RDKit (https://www.rdkit.org); "
        "substituent names follow IUPAC prefixes and ChEBI-style class phrases."
    )
    config: DemoMoleculesConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def cache_file(self) -> Path:
        """The TSV holding this configuration's generated pairs."""
        from rdkit import rdBase

        from repmix_orma.graph import default_cache_dir

        c = self.config
        key = json.dumps(
            [GENERATOR_VERSION, c.size, c.seed, c.max_substituents, c.positions, rdBase.rdkitVersion]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        root = Path(c.cache_dir).expanduser() if c.cache_dir else default_cache_dir()
        return root / "demo-molecules" / f"demo-{c.size}-{c.seed}-{digest}.tsv"

    def pairs(self) -> list[tuple[str, str]]:
        """(smiles, description) of every generated pair, from the cache or generated now."""
        path = self.cache_file()
        if path.is_file():
            lines = path.read_text(encoding="utf-8").split("\n")
            rows = [line.split("\t") for line in lines[1:] if line]
            if len(rows) == self.config.size and all(len(r) == 2 for r in rows):
                return [(r[0], r[1]) for r in rows]
        c = self.config
        made = generate(c.size, c.seed, c.max_substituents, c.positions)
        rows_out = [(m.smiles, m.description) for m in made]
        text = "smiles\tdescription\n" + "".join(f"{s}\t{d}\n" for s, d in rows_out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tsv", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except OSError:
            pass  # an unwritable cache only means generating again next time
        return rows_out

    def load(self, split: str | None = None) -> Examples:
        """Load ``train``, ``test`` or ``all`` (default: the configured split)."""
        c = self.config
        split = split or c.split
        if split not in ("train", "test", "all"):
            raise InputError(f"orma.demo-molecules has no split {split!r}; splits: train, test, all")
        pairs = self.pairs()
        n = len(pairs)
        n_test = round(c.test_fraction * n)
        perm = np.random.default_rng(c.seed + 1).permutation(n)
        test = {int(i) for i in perm[:n_test]}
        if split == "all":
            index = list(range(n))
        else:
            index = [i for i in range(n) if (i in test) == (split == "test")]
        column = {"smiles": 0, "description": 1}
        columns = {tower: [pairs[i][column[col]] for i in index] for tower, col in c.fields.items()}
        notes = [
            f"generated {n} pairs (seed {c.seed}); {n_test} in 'test', {n - n_test} in 'train'; this is {split!r}"
        ]
        return Examples(columns, None, [f"demo-{i}" for i in index], notes=notes)
