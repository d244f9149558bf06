"""``orma.molecule-graph``: SMILES -> ORMA's hierarchical heterogeneous graph.

Each molecule becomes one graph with three kinds of nodes, in this order
(ORMA's ``MolGraph``, itself HiMol's):

* ``n`` **atom** nodes with RDKit features (below), joined by their bonds in
  both directions;
* ``m`` **motif** nodes (BRICS motifs, :mod:`repmix_orma.motifs`), each the
  mean of its atoms' features, with edges atom -> motif only;
* one **molecule** node, the mean of the motif features, with edges
  motif -> molecule; when a molecule has no motif (no BRICS bond, a single
  atom, ``motifs: none``) it is the mean of the atoms, with edges
  atom -> molecule. With ``empty_motifs: whole-molecule`` (not ORMA) such a
  molecule gets one motif made of all its atoms instead (``motifs: brics`` only).

**Atom features.** ORMA feeds each atom the 300-d mol2vec embedding of its
Morgan identifier, read from Text2Mol's ``token_embedding_dict.npy``. mol2vec
is not on PyPI in a form that installs offline with this torch, and its
embeddings are trained model weights that repmix cannot download, so atoms
get RDKit features instead (one-hot blocks, stored as ``uint8``): element
(:data:`ELEMENTS` + other), degree (0-5, 6+), formal charge (<=-2, -1, 0, +1,
>=+2), hybridisation (S, SP, SP2, SP3, SP3D, SP3D2, other), aromaticity,
total hydrogen count (0-3, 4+), ring membership and chirality tag
(none, CW, CCW, other). ``morgan_bits > 0`` adds mol2vec's *inputs*, the
atom's Morgan identifiers of radius 0..``morgan_radius``, hashed into
``morgan_bits`` multi-hot bits.

**Caching.** Featurising costs RDKit parsing, BRICS matching and SSSR
perception (about 1-2 ms a molecule). Each featurised molecule is written
once to ``<cache_dir>/<featuriser id>/<xx>/<sha256>.npz`` (``numpy.savez``,
loaded with ``allow_pickle=False``; written to a temporary file and renamed,
so concurrent processes never read half a file), keyed by the SHA-256 of the
SMILES string and of everything that changes the features (this module's
:data:`FEATURISER_VERSION`, the element list, ``motifs``, ``ring_split``,
``morgan_bits``, ``morgan_radius`` and the RDKit version). An in-memory LRU
of ``memory_cache`` molecules sits in front of it. A later epoch, or a later
run with the same config, does no RDKit work at all.

**Batching.** Per-molecule arrays (node features, local edge list, node level
and padded-slot index) are prepared once per molecule; a batch is their
concatenation with node offsets (``numpy.repeat`` of the offsets over the
edges), without any Python loop over atoms. Truncation to ``max_atoms`` /
``max_motifs`` (ORMA's ``num_atom`` / ``num_motif``) only limits the padded
``atom`` and ``motif`` outputs: message passing still sees the whole
molecule, as in ORMA, where truncation happens when node outputs are grouped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from repmix.sdk import ComponentConfig, ConfigError, InputError, Runtime, Tokenizer
from torch import Tensor

from repmix_orma.motifs import motif_decomp

__all__ = [
    "ELEMENTS",
    "FEATURISER_VERSION",
    "GraphBatch",
    "MolGraph",
    "MoleculeGraphTokenizer",
    "default_cache_dir",
    "feature_names",
    "parse_smiles",
]

#: Bumped whenever featurisation changes; part of every cache key.
FEATURISER_VERSION = 1
#: Elements with their own one-hot bit (every other element, and the dummy atom ``*``, is "other").
#: Covers 99.98 % of the atoms of ChEBI-20 (validation + train molecules).
ELEMENTS: tuple[str, ...] = (
    "C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "Si", "Se", "H",
    "Na", "K", "Li", "Mg", "Ca", "Fe", "Co", "Ni", "Cu", "Zn", "Mo", "Pt", "As",
)  # fmt: skip
_DEGREES = 7  # 0..5, 6+
_CHARGES = (-2, -1, 0, 1, 2)  # clipped
_HYBRIDISATIONS = ("S", "SP", "SP2", "SP3", "SP3D", "SP3D2")  # + other
_HYDROGENS = 5  # 0..3, 4+
_CHIRALITY = ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW")  # + other
_BASE_DIM = len(ELEMENTS) + 1 + _DEGREES + len(_CHARGES) + len(_HYBRIDISATIONS) + 1 + 1 + _HYDROGENS + 1 + len(_CHIRALITY) + 1


def feature_names(morgan_bits: int = 0) -> list[str]:
    """Names of the atom feature columns, in order."""
    names = [f"element={e}" for e in ELEMENTS] + ["element=other"]
    names += [f"degree={d}" for d in range(_DEGREES - 1)] + [f"degree>={_DEGREES - 1}"]
    names += ["charge<=-2", "charge=-1", "charge=0", "charge=+1", "charge>=+2"]
    names += [f"hybridisation={h}" for h in _HYBRIDISATIONS] + ["hybridisation=other"]
    names += ["aromatic"]
    names += [f"hydrogens={h}" for h in range(_HYDROGENS - 1)] + [f"hydrogens>={_HYDROGENS - 1}"]
    names += ["in_ring"]
    names += [f"chirality={c}" for c in _CHIRALITY] + ["chirality=other"]
    names += [f"morgan_hash={i}" for i in range(morgan_bits)]
    assert len(names) == _BASE_DIM + morgan_bits
    return names


def default_cache_dir() -> Path:
    """``$REPMIX_CACHE/orma``, else ``~/.cache/repmix/orma``."""
    root = os.environ.get("REPMIX_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "repmix") / "orma"


def parse_smiles(smiles: str) -> tuple[Any, str | None]:
    """(RDKit molecule, None), or (None, why it cannot be read). RDKit's own logging is silenced."""
    from rdkit import Chem, rdBase
    from rdkit.Chem.rdchem import MolSanitizeException

    if not isinstance(smiles, str):
        return None, f"expected a SMILES string, got {type(smiles).__name__}"
    if not smiles.strip():
        return None, "empty SMILES"
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            if mol.GetNumAtoms() == 0:
                return None, "SMILES has no atoms"
            return mol, None
        raw = Chem.MolFromSmiles(smiles, sanitize=False)
        if raw is None:
            return None, f"invalid SMILES (syntax error): {smiles[:80]!r}"
        try:
            Chem.SanitizeMol(raw)
        except MolSanitizeException as exc:  # AtomValenceException, KekulizeException, ...
            return None, f"invalid SMILES ({type(exc).__name__}: {exc}): {smiles[:80]!r}"
        return None, f"invalid SMILES: {smiles[:80]!r}"


@dataclass
class MolGraph:
    """One featurised molecule: what the disk cache stores (all arrays, no pickle).

    ``atom_x`` [n, F] uint8 atom features; ``bonds`` [n_bonds, 2] int32;
    ``motif_atom`` / ``motif_id`` [K] int32: atom ``motif_atom[k]`` belongs to
    motif ``motif_id[k]``; ``n_motifs``: number of motifs.
    """

    atom_x: np.ndarray
    bonds: np.ndarray
    motif_atom: np.ndarray
    motif_id: np.ndarray
    n_motifs: int

    @property
    def n_atoms(self) -> int:
        return int(self.atom_x.shape[0])

    def motifs(self) -> list[list[int]]:
        """The motifs as lists of atom indices."""
        out: list[list[int]] = [[] for _ in range(self.n_motifs)]
        for atom, motif in zip(self.motif_atom.tolist(), self.motif_id.tolist()):
            out[motif].append(atom)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Two arrays for the ``.npz``: ``atom_x`` and ``topology`` (int32: motif count, bond count,
        membership count, then the bonds, ``motif_atom`` and ``motif_id``), so a load reads two members."""
        head = np.array([self.n_motifs, len(self.bonds), len(self.motif_atom)], dtype=np.int32)
        topology = np.concatenate([head, self.bonds.reshape(-1), self.motif_atom, self.motif_id]).astype(np.int32)
        return {"atom_x": self.atom_x, "topology": topology}

    @classmethod
    def from_arrays(cls, arrays: Any, feature_dim: int) -> MolGraph:
        """Rebuild from stored arrays, checking shapes (a damaged file raises ``ValueError``)."""
        atom_x = np.asarray(arrays["atom_x"], dtype=np.uint8)
        topology = np.asarray(arrays["topology"], dtype=np.int32).reshape(-1)
        if topology.shape[0] < 3:
            raise ValueError("truncated topology in a cached molecule graph")
        n_motifs, n_bonds, n_members = (int(v) for v in topology[:3])
        if min(n_motifs, n_bonds, n_members) < 0 or topology.shape[0] != 3 + 2 * n_bonds + 2 * n_members:
            raise ValueError("inconsistent topology in a cached molecule graph")
        bonds = topology[3 : 3 + 2 * n_bonds].reshape(-1, 2)
        motif_atom = topology[3 + 2 * n_bonds : 3 + 2 * n_bonds + n_members]
        motif_id = topology[3 + 2 * n_bonds + n_members :]
        n = atom_x.shape[0] if atom_x.ndim == 2 else -1
        ok = (
            atom_x.ndim == 2
            and atom_x.shape[1] == feature_dim
            and n >= 1
            and (bonds.size == 0 or (bonds.min() >= 0 and bonds.max() < n))
            and (motif_atom.size == 0 or (motif_atom.min() >= 0 and motif_atom.max() < n))
            and (motif_id.size == 0 or (motif_id.min() >= 0 and motif_id.max() < n_motifs))
            and bool(np.all(np.diff(motif_id) >= 0))
            and (n_motifs == 0 or np.bincount(motif_id, minlength=n_motifs).min() >= 1)
        )
        if not ok:
            raise ValueError("inconsistent arrays in a cached molecule graph")
        return cls(atom_x, bonds, motif_atom, motif_id, n_motifs)


@dataclass
class _Prepared:
    """Per-molecule arrays ready for concatenation (built once per molecule and kept in the LRU)."""

    graph: MolGraph
    edges: np.ndarray  # [2, E] int32, local node indices
    level: np.ndarray  # [n_nodes] int8: 0 atom, 1 motif, 2 molecule
    slot: np.ndarray  # [n_nodes] int32: padded position within its level, -1 when truncated
    n_nodes: int
    kept_atoms: int
    kept_motifs: int
    motif_sizes: np.ndarray  # [m] int64: atoms per motif
    atom_features: np.ndarray | None = None  # [n, F] float32 when not the graph's own uint8 features (mol2vec)
    atom_ids: np.ndarray | None = None  # [n] int64 embedding rows (atom_features: identifiers)


@dataclass
class GraphBatch:
    """A batch of hierarchical molecule graphs, concatenated (what ``hierarchical-gnn`` reads).

    Nodes of graph ``b`` are contiguous: its atoms, then its motifs, then its
    molecule node. ``edge_index`` [2, E] runs source -> target over batch node
    indices. ``node_graph`` [N] gives each node's graph, ``node_level`` [N]
    its level (0 atom, 1 motif, 2 molecule) and ``node_slot`` [N] its position
    in the padded ``[B, A]`` / ``[B, M]`` outputs (-1: truncated away by
    ``max_atoms`` / ``max_motifs``). ``num_atoms`` / ``num_motifs`` [B] count
    each molecule's atoms and motifs before truncation; ``atom_width`` /
    ``motif_width`` are the padded widths (at least 1). ``atom_index`` [B, A]
    and ``motif_index`` [B, M] give the node row at each padded position (N,
    one past the last node, at padding), ``molecule_index`` [B] each molecule node.
    """

    x: Tensor
    edge_index: Tensor
    node_graph: Tensor
    node_level: Tensor
    node_slot: Tensor
    num_atoms: Tensor
    num_motifs: Tensor
    atom_width: int
    motif_width: int
    atom_index: Tensor
    motif_index: Tensor
    molecule_index: Tensor
    fingerprint: Tensor | None = None  # [B, F] molecule fingerprints when the tokenizer's 'fingerprint' is set
    # atom_features: identifiers - x is [N, 0]; the encoder embeds atom_ids [A] (each atom's embedding row,
    # atoms in node order) and node_pool [N, A] (sparse) maps atom vectors to every node's input: atoms
    # themselves, motifs the mean of their atoms, the molecule the mean of its motifs (or of its atoms)
    atom_ids: Tensor | None = None
    node_pool: Tensor | None = None

    @property
    def num_graphs(self) -> int:
        return int(self.num_atoms.shape[0])

    def to(self, device: torch.device | str) -> GraphBatch:
        """The same batch on ``device``."""
        return GraphBatch(
            **{f.name: (v.to(device) if isinstance(v := getattr(self, f.name), Tensor) else v) for f in fields(self)}
        )


class MoleculeGraphConfig(ComponentConfig):
    """Options of ``orma.molecule-graph``."""

    motifs: Literal["brics", "none"] = Field(
        "brics", description="motif nodes from HiMol's BRICS decomposition, or none (atoms -> molecule only)"
    )
    ring_split: Literal["subtract", "empty"] = Field(
        "subtract",
        description="multi-ring fragments: keep what is left after removing the rings (HiMol) or drop it",
    )
    empty_motifs: Literal["none", "whole-molecule"] = Field(
        "none",
        description="a molecule whose decomposition yields no motif: no motif node (ORMA, HiMol) or one motif "
        "spanning all its atoms, so the motif level has something to score",
    )
    max_atoms: int = Field(128, ge=1, description="atoms kept in the padded 'atom' output (ORMA's num_atom)")
    max_motifs: int = Field(32, ge=1, description="motifs kept in the padded 'motif' output (ORMA's num_motif)")
    morgan_bits: int = Field(0, ge=0, le=65536, description="hashed Morgan-identifier bits per atom (0 = off)")
    morgan_radius: int = Field(1, ge=0, le=4, description="largest Morgan radius hashed (mol2vec uses 0 and 1)")
    cache_dir: str | None = Field(
        None, description="disk cache folder (default $REPMIX_CACHE/orma or ~/.cache/repmix/orma)"
    )
    disk_cache: bool = Field(True, description="read and write featurised molecules on disk")
    memory_cache: int = Field(50_000, ge=0, description="featurised molecules kept in memory (LRU)")
    atom_features: Literal["rdkit", "mol2vec", "both", "identifiers"] = Field(
        "rdkit",
        description="atom node features: RDKit one-hot blocks, the mol2vec vector of the atom's Morgan identifier "
        "(ORMA; needs 'mol2vec'), both concatenated, or identifiers: a trainable embedding row per Morgan "
        "identifier, owned by hierarchical-gnn and initialised from the mol2vec table (not in ORMA)",
    )
    mol2vec: str | None = Field(
        None,
        description="mol2vec table (.safetensors from 'repmix orma mol2vec') for atom_features mol2vec/both/identifiers",
    )
    identifier_buckets: int = Field(
        0, ge=0, le=1_000_000,
        description="atom_features identifiers: extra hashed rows (initialised to UNK) for identifiers outside the "
        "table, so rare substructures get their own trainable vectors instead of sharing UNK (0: they share UNK)",
    )
    fingerprint: dict[str, Any] | None = Field(
        None,
        description="also give each molecule a fingerprint vector (options of orma.morgan-fingerprint, e.g. "
        "{radius: 2, size: 2048, counts: true, log_counts: true, extra: [maccs]}) for hierarchical-gnn's "
        "fingerprint_fusion",
    )


@dataclass
class CacheStats:
    """What the tokenizer did: RDKit featurisations, cache hits, truncations."""

    featurised: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    disk_writes: int = 0
    disk_errors: int = 0
    truncated_atoms: int = 0
    truncated_motifs: int = 0
    molecules: int = 0
    notes: list[str] = field(default_factory=list)


class MoleculeGraphTokenizer(Tokenizer):
    """SMILES -> :class:`GraphBatch` of ORMA's hierarchical graphs (atoms, BRICS motifs, molecule)."""

    Config: ClassVar[type[ComponentConfig]] = MoleculeGraphConfig
    citation: ClassVar[str] = (
        "Min, Liu, Zhang, Song, Su, He and Bo. ORMA: Exploring Optimal Transport-Based Multi-Grained "
        "Alignments for Text-Molecule Retrieval. IEEE BIBM 2024, arXiv:2411.11875. Motifs: Zang et al. "
        "Hierarchical Molecular Graph Self-Supervised Learning for property prediction (HiMol). "
        "Communications Chemistry 2023. BRICS: Degen et al. ChemMedChem 2008."
    )
    config: MoleculeGraphConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        c = self.config
        self.graph_feature_dim = _BASE_DIM + c.morgan_bits  # the RDKit features stored in the disk cache
        self.feature_dim = self.graph_feature_dim
        self.fingerprints: Any = None
        self.fingerprint_dim = 0
        if c.fingerprint is not None:
            from repmix_orma.fingerprints import MorganFingerprintTokenizer

            try:
                fp_config = MorganFingerprintTokenizer.Config.model_validate(c.fingerprint)
            except ValueError as exc:
                raise ConfigError(f"fingerprint: {str(exc).splitlines()[-1].strip()}", path="fingerprint") from None
            self.fingerprints = MorganFingerprintTokenizer(fp_config, runtime)
            self.fingerprint_dim = int(self.fingerprints.feature_dim)
        self.mol2vec_table: Any = None
        if c.atom_features != "rdkit":
            if not c.mol2vec:
                raise ConfigError(
                    f"atom_features: {c.atom_features} needs the mol2vec table (mol2vec: FILE)",
                    path="mol2vec",
                    hint="train one with: repmix orma mol2vec --molecules FILE... -o atoms.safetensors",
                )
            from repmix_orma.mol2vec import Mol2VecTable

            self.mol2vec_table = Mol2VecTable.load(Path(c.mol2vec).expanduser())
            own = self.feature_dim if c.atom_features == "both" else 0
            self.feature_dim = own + self.mol2vec_table.dim
        self.atom_identifier_init: np.ndarray | None = None
        if c.atom_features == "identifiers":
            # the initial embedding table hierarchical-gnn trains: the mol2vec rows, then the hashed buckets at UNK
            table = self.mol2vec_table
            unk = np.repeat(table.vectors[table.unk_row][None], c.identifier_buckets, axis=0)
            self.atom_identifier_init = np.concatenate([table.vectors, unk]).astype(np.float32)
        self.featuriser_id = self._featuriser_id()
        self.cache_root = (Path(c.cache_dir).expanduser() if c.cache_dir else default_cache_dir()) / self.featuriser_id
        self.stats = CacheStats()
        self._memory: OrderedDict[str, _Prepared] = OrderedDict()
        self._morgan: Any = None
        self._made_dirs: set[Path] = set()
        if c.disk_cache:
            try:
                self.cache_root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the molecule-graph cache folder {str(self.cache_root)!r}: {exc.strerror or exc}",
                    found=c.cache_dir,
                    hint="set cache_dir to a writable folder, set $REPMIX_CACHE, or disk_cache: false",
                ) from None

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The mol2vec table travels with a saved model."""
        return {"mol2vec": Path(self.config.mol2vec).expanduser()} if self.mol2vec_table is not None else {}

    def _with_mol2vec(self, smiles: str, prepared: _Prepared, mol: Any) -> _Prepared:
        """Attach mol2vec atom features (the RDKit graph cache is shared with ``atom_features: rdkit``)."""
        if self.mol2vec_table is None:
            return prepared
        if mol is None:
            mol, _ = parse_smiles(smiles)
        if self.config.atom_features == "identifiers":
            prepared.atom_ids = self.mol2vec_table.atom_rows(mol, buckets=self.config.identifier_buckets)
            return prepared
        vectors = self.mol2vec_table.atom_vectors(mol).astype(np.float32)
        if self.config.atom_features == "both":
            vectors = np.concatenate([prepared.graph.atom_x.astype(np.float32), vectors], axis=1)
        prepared.atom_features = vectors
        return prepared

    # ----------------------------------------------------------------- identity
    def _featuriser_id(self) -> str:
        """Hash of everything that changes a featurised molecule (part of the cache path)."""
        from rdkit import rdBase

        c = self.config
        spec = {
            "version": FEATURISER_VERSION,
            "elements": ELEMENTS,
            "motifs": c.motifs,
            "ring_split": c.ring_split,
            # only when set, so the default keeps the cache folder of earlier versions
            **({"empty_motifs": c.empty_motifs} if c.empty_motifs != "none" else {}),
            "morgan_bits": c.morgan_bits,
            "morgan_radius": c.morgan_radius if c.morgan_bits else None,
            "rdkit": rdBase.rdkitVersion,
        }
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        return f"v{FEATURISER_VERSION}-{digest}"

    def cache_path(self, smiles: str) -> Path:
        """Where the featurised ``smiles`` is stored on disk."""
        key = hashlib.sha256(smiles.encode("utf-8")).hexdigest()
        return self.cache_root / key[:2] / f"{key}.npz"

    # ------------------------------------------------------------ featurising
    def featurise(self, mol: Any) -> MolGraph:
        """RDKit molecule -> :class:`MolGraph` (atom features, bonds, motifs)."""
        from repmix_orma.motifs import bond_array

        c = self.config
        atoms = list(mol.GetAtoms())
        n = len(atoms)
        symbol_index = {e: i for i, e in enumerate(ELEMENTS)}
        element = np.array([symbol_index.get(a.GetSymbol(), len(ELEMENTS)) for a in atoms])
        degree = np.minimum([a.GetDegree() for a in atoms], _DEGREES - 1)
        charge = np.clip([a.GetFormalCharge() for a in atoms], _CHARGES[0], _CHARGES[-1]) - _CHARGES[0]
        hyb_index = {h: i for i, h in enumerate(_HYBRIDISATIONS)}
        hybrid = np.array([hyb_index.get(str(a.GetHybridization()), len(_HYBRIDISATIONS)) for a in atoms])
        aromatic = np.array([a.GetIsAromatic() for a in atoms], dtype=bool)
        hydrogens = np.minimum([a.GetTotalNumHs() for a in atoms], _HYDROGENS - 1)
        in_ring = np.array([a.IsInRing() for a in atoms], dtype=bool)
        chi_index = {h: i for i, h in enumerate(_CHIRALITY)}
        chirality = np.array([chi_index.get(str(a.GetChiralTag()), len(_CHIRALITY)) for a in atoms])

        x = np.zeros((n, self.graph_feature_dim), dtype=np.uint8)
        rows = np.arange(n)
        offset = 0
        for values, width in (
            (element, len(ELEMENTS) + 1),
            (degree, _DEGREES),
            (charge, len(_CHARGES)),
            (hybrid, len(_HYBRIDISATIONS) + 1),
        ):
            x[rows, offset + values] = 1
            offset += width
        x[:, offset] = aromatic
        offset += 1
        x[rows, offset + hydrogens] = 1
        offset += _HYDROGENS
        x[:, offset] = in_ring
        offset += 1
        x[rows, offset + chirality] = 1
        offset += len(_CHIRALITY) + 1
        if c.morgan_bits:
            for atom, ids in enumerate(self._atom_morgan_ids(mol)):
                if ids:
                    x[atom, offset + np.asarray(ids, dtype=np.uint64) % np.uint64(c.morgan_bits)] = 1
        bonds = bond_array(mol).astype(np.int32)
        motifs = motif_decomp(mol, c.ring_split) if c.motifs == "brics" else []
        if not motifs and c.motifs == "brics" and c.empty_motifs == "whole-molecule" and n > 0:
            motifs = [list(range(n))]
        sizes = [len(m) for m in motifs]
        motif_atom = np.asarray([a for m in motifs for a in m], dtype=np.int32)
        motif_id = np.repeat(np.arange(len(motifs), dtype=np.int32), sizes)
        return MolGraph(x, bonds, motif_atom, motif_id, len(motifs))

    def _atom_morgan_ids(self, mol: Any) -> tuple[tuple[int, ...], ...]:
        """Each atom's Morgan identifiers for radius 0..``morgan_radius`` (unhashed, as mol2vec reads them)."""
        from rdkit.Chem import rdFingerprintGenerator

        if self._morgan is None:
            self._morgan = rdFingerprintGenerator.GetMorganGenerator(radius=self.config.morgan_radius)
        out = rdFingerprintGenerator.AdditionalOutput()
        out.AllocateAtomToBits()
        self._morgan.GetSparseCountFingerprint(mol, additionalOutput=out)
        return out.GetAtomToBits()

    # ------------------------------------------------------------------ caches
    def _load_disk(self, smiles: str) -> MolGraph | None:
        path = self.cache_path(smiles)
        try:
            with np.load(path, allow_pickle=False) as stored:
                return MolGraph.from_arrays(stored, self.graph_feature_dim)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:  # damaged file: recompute and overwrite
            self.stats.disk_errors += 1
            if len(self.stats.notes) < 10:
                self.stats.notes.append(f"ignored damaged cache file {path}: {exc}")
            return None

    def _store_disk(self, smiles: str, graph: MolGraph) -> None:
        path = self.cache_path(smiles)
        try:
            if path.parent not in self._made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made_dirs.add(path.parent)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.savez(handle, **graph.arrays())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.stats.disk_writes += 1
        except OSError as exc:  # a full or read-only disk must not stop training: featurise again next time
            self.stats.disk_errors += 1
            if len(self.stats.notes) < 10:
                self.stats.notes.append(f"could not write cache file {path}: {exc}")

    def _prepare(self, graph: MolGraph) -> _Prepared:
        """Local edge list, node levels and padded slots of one molecule (done once per molecule)."""
        c = self.config
        n, m = graph.n_atoms, graph.n_motifs
        b = graph.bonds.astype(np.int64)
        atom_edges = np.concatenate([b.T, b[:, ::-1].T], axis=1) if len(b) else np.zeros((2, 0), dtype=np.int64)
        if m:
            motif_edges = np.stack([graph.motif_atom.astype(np.int64), n + graph.motif_id.astype(np.int64)])
            super_edges = np.stack([n + np.arange(m, dtype=np.int64), np.full(m, n + m, dtype=np.int64)])
        else:
            motif_edges = np.zeros((2, 0), dtype=np.int64)
            super_edges = np.stack([np.arange(n, dtype=np.int64), np.full(n, n, dtype=np.int64)])
        edges = np.concatenate([atom_edges, motif_edges, super_edges], axis=1).astype(np.int32)
        level = np.concatenate([np.zeros(n, np.int8), np.ones(m, np.int8), np.full(1, 2, np.int8)])
        atom_slot = np.arange(n, dtype=np.int64)
        atom_slot[atom_slot >= c.max_atoms] = -1
        motif_slot = np.arange(m, dtype=np.int64)
        motif_slot[motif_slot >= c.max_motifs] = -1
        slot = np.concatenate([atom_slot, motif_slot, np.zeros(1, np.int64)]).astype(np.int32)
        return _Prepared(
            graph,
            edges,
            level,
            slot,
            n + m + 1,
            min(n, c.max_atoms),
            min(m, c.max_motifs),
            np.bincount(graph.motif_id, minlength=m).astype(np.int64),
        )

    def _remember(self, smiles: str, prepared: _Prepared) -> None:
        if self.config.memory_cache <= 0:
            return
        self._memory[smiles] = prepared
        self._memory.move_to_end(smiles)
        while len(self._memory) > self.config.memory_cache:
            self._memory.popitem(last=False)

    def _lookup(self, smiles: str) -> tuple[_Prepared | None, str | None]:
        """(prepared graph, None) from memory, disk or RDKit; (None, reason) when unreadable."""
        hit = self._memory.get(smiles)
        if hit is not None:
            self._memory.move_to_end(smiles)
            self.stats.memory_hits += 1
            return hit, None
        graph = self._load_disk(smiles) if self.config.disk_cache else None
        mol = None
        if graph is not None:
            self.stats.disk_hits += 1
        else:
            mol, reason = parse_smiles(smiles)
            if mol is None:
                return None, reason
            graph = self.featurise(mol)
            self.stats.featurised += 1
            if self.config.disk_cache:
                self._store_disk(smiles, graph)
        prepared = self._with_mol2vec(smiles, self._prepare(graph), mol)
        self._remember(smiles, prepared)
        return prepared, None

    def graph(self, smiles: str) -> MolGraph:
        """The featurised molecule for ``smiles`` (through the caches); :class:`InputError` when invalid."""
        prepared, reason = self._lookup(smiles) if isinstance(smiles, str) else (None, self.check_item(smiles))
        if prepared is None:
            raise InputError(f"cannot build a molecule graph: {reason}")
        return prepared.graph

    # -------------------------------------------------------------- interface
    def check_item(self, item: Any) -> str | None:
        """Why ``item`` is not a usable SMILES, or ``None`` (valid items are featurised and cached)."""
        if not isinstance(item, str):
            return f"expected a SMILES string, got {type(item).__name__}"
        return self._lookup(item)[1]

    def sort_key(self, item: Any) -> int:
        """SMILES length: a proxy of the atom count."""
        return len(item) if isinstance(item, str) else 0

    def __call__(self, items: Sequence[Any]) -> GraphBatch:
        """Featurise (or fetch from the caches) and concatenate a batch of SMILES."""
        smiles = list(items)
        if not smiles:
            raise InputError("cannot tokenize an empty batch of molecules")
        prepared: list[_Prepared] = []
        for i, item in enumerate(smiles):
            if not isinstance(item, str):
                raise InputError(f"item {i} of the batch: expected a SMILES string, got {type(item).__name__}")
            p, reason = self._lookup(item)
            if p is None:
                raise InputError(f"item {i} of the batch: {reason}")
            prepared.append(p)
        self.stats.molecules += len(prepared)
        batch = collate(prepared, self.feature_dim, self.stats, identifiers=self.atom_identifier_init is not None)
        if self.fingerprints is not None:
            batch.fingerprint = self.fingerprints(smiles)["features"]
        return batch


def collate(
    prepared: Sequence[_Prepared], feature_dim: int, stats: CacheStats | None = None, *, identifiers: bool = False
) -> GraphBatch:
    """Concatenate prepared molecules into one :class:`GraphBatch` (no Python loop over atoms).

    Motif nodes get the mean of their atoms' features and the molecule node
    the mean of its motifs' (of its atoms' when it has none). Both are segment
    means over contiguous, sorted rows (``numpy.add.reduceat``); the whole
    collation is numpy, so it does not compete for torch's intra-op threads.
    With ``identifiers`` the batch carries atom embedding rows and the same
    means as a sparse pooling matrix (:func:`node_pool`) instead of features.
    """
    bsz = len(prepared)
    n_nodes = np.array([p.n_nodes for p in prepared], dtype=np.int64)
    n_atoms = np.array([p.graph.n_atoms for p in prepared], dtype=np.int64)
    n_motifs = np.array([p.graph.n_motifs for p in prepared], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_nodes)[:-1]]).astype(np.int64)
    total = int(n_nodes.sum())
    edge_counts = np.array([p.edges.shape[1] for p in prepared], dtype=np.int64)
    edges = np.concatenate([p.edges for p in prepared], axis=1).astype(np.int64)
    edges += np.repeat(offsets, edge_counts)[None, :]
    level = np.concatenate([p.level for p in prepared])
    slot = np.concatenate([p.slot for p in prepared]).astype(np.int64)
    node_graph = np.repeat(np.arange(bsz, dtype=np.int64), n_nodes)

    x = np.zeros((total, 0 if identifiers else feature_dim), dtype=np.float32)
    if not identifiers:
        x[level == 0] = np.concatenate(
            [p.graph.atom_x if p.atom_features is None else p.atom_features for p in prepared]
        )
    # Motif features: mean of member atoms. Members are stored motif by motif, molecules in order,
    # so the rows of one motif are contiguous: a segment sum with reduceat.
    member_counts = np.array([p.graph.motif_atom.shape[0] for p in prepared], dtype=np.int64)
    src = np.zeros(0, dtype=np.int64)
    sizes = np.zeros(0, dtype=np.int64)
    if member_counts.sum():
        src = np.concatenate([p.graph.motif_atom for p in prepared]).astype(np.int64)
        src += np.repeat(offsets, member_counts)
        sizes = np.concatenate([p.motif_sizes for p in prepared])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        x[level == 1] = np.add.reduceat(x[src], starts, axis=0) / sizes[:, None]
    # Molecule node: mean of its motif nodes, or of its atoms when it has none (contiguous rows per graph).
    pool_level = np.where(n_motifs > 0, 1, 0)
    pool_rows = np.flatnonzero(level == pool_level[node_graph])
    pool_counts = np.where(n_motifs > 0, n_motifs, n_atoms)
    starts = np.concatenate([[0], np.cumsum(pool_counts)[:-1]])
    x[offsets + n_nodes - 1] = np.add.reduceat(x[pool_rows], starts, axis=0) / pool_counts[:, None]

    kept_atoms = np.array([p.kept_atoms for p in prepared])
    kept_motifs = np.array([p.kept_motifs for p in prepared])
    atom_width, motif_width = max(1, int(kept_atoms.max())), max(1, int(kept_motifs.max()))
    padded_index = {}
    for code, width in ((0, atom_width), (1, motif_width)):
        rows = np.flatnonzero((level == code) & (slot >= 0))
        index = np.full(bsz * width, total, dtype=np.int64)
        index[node_graph[rows] * width + slot[rows]] = rows
        padded_index[code] = torch.from_numpy(index.reshape(bsz, width))
    if stats is not None:
        stats.truncated_atoms += int((n_atoms > kept_atoms).sum())
        stats.truncated_motifs += int((n_motifs > kept_motifs).sum())
    atom_ids = pool = None
    if identifiers:
        if any(p.atom_ids is None for p in prepared):
            raise ValueError("collate(identifiers=True) needs every molecule's atom_ids")
        atom_ids = torch.from_numpy(np.concatenate([p.atom_ids for p in prepared]).astype(np.int64))
        pool = node_pool(level, node_graph, offsets + n_nodes - 1, n_atoms, n_motifs, src, sizes)
    return GraphBatch(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.ascontiguousarray(edges)),
        node_graph=torch.from_numpy(node_graph),
        node_level=torch.from_numpy(level.astype(np.int64)),
        node_slot=torch.from_numpy(slot),
        num_atoms=torch.from_numpy(n_atoms),
        num_motifs=torch.from_numpy(n_motifs),
        atom_width=atom_width,
        motif_width=motif_width,
        atom_index=padded_index[0],
        motif_index=padded_index[1],
        molecule_index=torch.from_numpy(offsets + n_nodes - 1),
        atom_ids=atom_ids,
        node_pool=pool,
    )


def node_pool(
    level: np.ndarray,
    node_graph: np.ndarray,
    molecule_rows: np.ndarray,
    n_atoms: np.ndarray,
    n_motifs: np.ndarray,
    members: np.ndarray,
    sizes: np.ndarray,
) -> Tensor:
    """Sparse [N, A] matrix whose product with the atoms' vectors gives every node's input.

    The same means :func:`collate` takes over fixed features, as a matrix so
    that gradients reach a learned atom embedding: an atom node's row picks its
    atom; a motif's row averages its ``members`` (global node indices, motif by
    motif, ``sizes`` each); a molecule's row averages its motifs' rows, or its
    atoms when it has none.
    """
    total = level.shape[0]
    atom_nodes = np.flatnonzero(level == 0)
    atom_of_node = np.full(total, -1, dtype=np.int64)
    atom_of_node[atom_nodes] = np.arange(atom_nodes.shape[0])
    rows, cols, vals = [atom_nodes], [np.arange(atom_nodes.shape[0])], [np.ones(atom_nodes.shape[0])]
    if members.shape[0]:
        motif_nodes = np.flatnonzero(level == 1)
        motif_of_member = np.repeat(np.arange(sizes.shape[0]), sizes)
        member_atoms = atom_of_node[members]
        member_weight = 1.0 / sizes[motif_of_member]
        rows.append(motif_nodes[motif_of_member])
        cols.append(member_atoms)
        vals.append(member_weight)
        graph_of_member = node_graph[motif_nodes[motif_of_member]]
        rows.append(molecule_rows[graph_of_member])
        cols.append(member_atoms)
        vals.append(member_weight / n_motifs[graph_of_member])
    bare = n_motifs[node_graph[atom_nodes]] == 0  # atoms of molecules without motifs feed the molecule node
    graph_of_atom = node_graph[atom_nodes[bare]]
    rows.append(molecule_rows[graph_of_atom])
    cols.append(np.flatnonzero(bare))
    vals.append(1.0 / n_atoms[graph_of_atom])
    index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]).astype(np.int64))
    values = torch.from_numpy(np.concatenate(vals).astype(np.float32))
    pool = torch.sparse_coo_tensor(index, values, (total, atom_nodes.shape[0]), check_invariants=False)
    return pool.coalesce()
