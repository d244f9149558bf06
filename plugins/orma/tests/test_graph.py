"""``orma.molecule-graph``: features, hierarchical edges, batching, caching, bad inputs."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from repmix.sdk import InputError, Runtime
from repmix_orma.graph import (
    ELEMENTS,
    GraphBatch,
    MoleculeGraphTokenizer,
    feature_names,
    parse_smiles,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
SMILES = [ASPIRIN, "c1ccccc1", "C", "CCO.[Na+]", "COc1ccc2ccccc2c1C", "O=C(NC1CCCCC1)c1ccccc1"]


def make(cache_dir: str, **options: object) -> MoleculeGraphTokenizer:
    config = MoleculeGraphTokenizer.Config(cache_dir=cache_dir, **options)
    return MoleculeGraphTokenizer(config, Runtime())


def test_atom_features_are_one_hot_blocks(cache_dir: str) -> None:
    tok = make(cache_dir)
    names = feature_names()
    assert tok.feature_dim == len(names) == len(set(names))
    x = tok.graph(ASPIRIN).atom_x
    assert x.dtype == np.uint8 and x.shape == (13, tok.feature_dim)
    blocks: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        blocks.setdefault(name.split("=")[0].split("<")[0].split(">")[0], []).append(i)
    for block in ("element", "degree", "charge", "hybridisation", "hydrogens", "chirality"):
        assert (x[:, blocks[block]].sum(axis=1) == 1).all(), block
    # atom 0 is a methyl carbon: C, degree 1, 3 hydrogens, sp3, not aromatic, not in a ring
    on = {names[i] for i in np.flatnonzero(x[0])}
    assert on == {"element=C", "degree=1", "charge=0", "hybridisation=SP3", "hydrogens=3", "chirality=CHI_UNSPECIFIED"}
    # atom 4 is an aromatic ring carbon bonded to the ester oxygen
    on = {names[i] for i in np.flatnonzero(x[4])}
    assert {"aromatic", "in_ring", "hybridisation=SP2", "degree=3", "hydrogens=0"} <= on
    # an element outside the list is "other"
    gold = tok.graph("[Au]C").atom_x
    assert "Au" not in ELEMENTS and gold[0, names.index("element=other")] == 1


def test_morgan_bits_add_hashed_identifiers(cache_dir: str) -> None:
    plain = make(cache_dir)
    hashed = make(cache_dir, morgan_bits=64, morgan_radius=1)
    assert hashed.feature_dim == plain.feature_dim + 64
    x = hashed.graph(ASPIRIN).atom_x
    np.testing.assert_array_equal(x[:, : plain.feature_dim], plain.graph(ASPIRIN).atom_x)
    morgan = x[:, plain.feature_dim :]
    assert ((morgan.sum(axis=1) >= 1) & (morgan.sum(axis=1) <= 2)).all()  # radius 0 and 1 identifiers
    # same environment -> same bits: the two carbonyl oxygens (2 and 11) have equal radius-0/1 environments
    np.testing.assert_array_equal(morgan[2], morgan[11])
    assert hashed.cache_root != plain.cache_root  # different features never share cache files


def test_hierarchical_edges_and_node_features(cache_dir: str) -> None:
    tok = make(cache_dir)
    batch = tok([ASPIRIN])
    graph = tok.graph(ASPIRIN)
    n, m = graph.n_atoms, graph.n_motifs
    assert (n, m) == (13, 4)
    assert batch.x.shape == (n + m + 1, tok.feature_dim)
    edges = {tuple(e) for e in batch.edge_index.T.tolist()}
    bonds = {tuple(b) for b in graph.bonds.tolist()}
    assert {(a, b) for a, b in bonds} <= edges and {(b, a) for a, b in bonds} <= edges  # both directions
    motifs = graph.motifs()
    for k, motif in enumerate(motifs):
        for atom in motif:
            assert (atom, n + k) in edges and (n + k, atom) not in edges  # atom -> motif only
        assert (n + k, n + m) in edges and (n + m, n + k) not in edges  # motif -> molecule only
        torch.testing.assert_close(batch.x[n + k], batch.x[motif].mean(0))
    assert len(edges) == 2 * len(bonds) + sum(len(mt) for mt in motifs) + m
    torch.testing.assert_close(batch.x[n + m], batch.x[n : n + m].mean(0))  # molecule = mean of motifs
    assert batch.node_level.tolist() == [0] * n + [1] * m + [2]


def test_molecules_without_motifs_fall_back_to_atoms(cache_dir: str) -> None:
    tok = make(cache_dir)
    for smiles in ("c1ccccc1", "C", "CCO"):
        batch = tok([smiles])
        n = int(batch.num_atoms[0])
        assert int(batch.num_motifs[0]) == 0 and batch.x.shape[0] == n + 1
        edges = {tuple(e) for e in batch.edge_index.T.tolist()}
        assert {(a, n) for a in range(n)} <= edges  # atom -> molecule
        torch.testing.assert_close(batch.x[n], batch.x[:n].mean(0))
    none = make(cache_dir, motifs="none")
    assert int(none([ASPIRIN]).num_motifs[0]) == 0


def test_whole_molecule_motif_for_molecules_without_motifs(cache_dir: str) -> None:
    """``empty_motifs: whole-molecule``: a motif-less molecule gets one motif of all its atoms; others unchanged."""
    plain, whole = make(cache_dir), make(cache_dir, empty_motifs="whole-molecule")
    assert plain.featuriser_id != whole.featuriser_id
    for smiles in ("c1ccccc1", "CCO", "C"):
        batch = whole([smiles])
        n = int(batch.num_atoms[0])
        assert int(batch.num_motifs[0]) == 1 and batch.x.shape[0] == n + 2
        edges = {tuple(e) for e in batch.edge_index.T.tolist()}
        assert {(a, n) for a in range(n)} <= edges and (n, n + 1) in edges  # atoms -> motif -> molecule
        assert not any((a, n + 1) in edges for a in range(n))
        torch.testing.assert_close(batch.x[n], batch.x[:n].mean(0))
    for smiles in (ASPIRIN, "O=C(NC1CCCCC1)c1ccccc1"):  # molecules with motifs are not touched
        a, b = plain([smiles]), whole([smiles])
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert int(make(cache_dir, motifs="none", empty_motifs="whole-molecule")([ASPIRIN]).num_motifs[0]) == 0


def reference_collate(tok: MoleculeGraphTokenizer, smiles: list[str]) -> dict[str, torch.Tensor]:
    """Per-molecule graphs stacked with a plain loop: the reference for the vectorised collation."""
    xs, edges, graph_of, levels, slots = [], [], [], [], []
    offset = 0
    for b, s in enumerate(smiles):
        one = tok([s])
        xs.append(one.x)
        edges.append(one.edge_index + offset)
        graph_of.append(torch.full((one.x.shape[0],), b))
        levels.append(one.node_level)
        slots.append(one.node_slot)
        offset += one.x.shape[0]
    return {
        "x": torch.cat(xs),
        "edge_index": torch.cat(edges, dim=1),
        "node_graph": torch.cat(graph_of),
        "node_level": torch.cat(levels),
        "node_slot": torch.cat(slots),
    }


def test_collation_equals_per_molecule_graphs(cache_dir: str) -> None:
    tok = make(cache_dir, max_atoms=12, max_motifs=3)
    batch = tok(SMILES)
    expected = reference_collate(tok, SMILES)
    for key, value in expected.items():
        torch.testing.assert_close(getattr(batch, key), value, msg=key)
    assert batch.num_atoms.tolist() == [13, 6, 1, 4, 13, 15]
    assert batch.num_motifs.tolist() == [4, 0, 0, 1, 4, 4]
    assert (batch.atom_width, batch.motif_width) == (12, 3)
    # truncation only marks slots: every atom is still a node
    atoms = batch.node_level == 0
    assert int(atoms.sum()) == sum(batch.num_atoms.tolist())
    assert int((atoms & (batch.node_slot < 0)).sum()) == (13 - 12) + (13 - 12) + (15 - 12)
    assert tok.stats.truncated_atoms >= 3 and tok.stats.truncated_motifs >= 3
    # the padded-position maps point at the right nodes, and padding at row N
    total = batch.x.shape[0]
    for code, index in ((0, batch.atom_index), (1, batch.motif_index)):
        b, position = torch.nonzero(index < total, as_tuple=True)
        rows = index[b, position]
        assert torch.equal(batch.node_graph[rows], b) and torch.equal(batch.node_slot[rows], position)
        assert bool((batch.node_level[rows] == code).all())
        real = (batch.node_level == code) & (batch.node_slot >= 0)
        assert len(rows) == int(real.sum())
    assert batch.node_level[batch.molecule_index].tolist() == [2] * len(SMILES)


def test_batch_moves_between_devices(cache_dir: str) -> None:
    batch = make(cache_dir)(SMILES[:2])
    moved = batch.to("cpu")
    assert isinstance(moved, GraphBatch) and torch.equal(moved.x, batch.x)
    assert moved.atom_width == batch.atom_width and moved.num_graphs == 2


def test_second_run_does_no_rdkit_work(cache_dir: str) -> None:
    first = make(cache_dir)
    first(SMILES)
    assert first.stats.featurised == len(SMILES) and first.stats.disk_writes == len(SMILES)
    first(SMILES)  # second epoch: memory hits only
    assert first.stats.featurised == len(SMILES) and first.stats.memory_hits == len(SMILES)
    files = sorted(Path(first.cache_root).rglob("*.npz"))
    assert len(files) == len(SMILES)
    with np.load(files[0], allow_pickle=False) as stored:  # plain arrays, no pickled objects
        assert all(stored[k].dtype != object for k in stored.files)

    second = make(cache_dir)  # a new run: same config, same cache folder
    with mock.patch("rdkit.Chem.MolFromSmiles", side_effect=AssertionError("RDKit was called")) as parse:
        batch = second(SMILES)
        assert second.check_item(ASPIRIN) is None
    parse.assert_not_called()
    assert second.stats.featurised == 0 and second.stats.disk_hits == len(SMILES)
    expected = first(SMILES)
    torch.testing.assert_close(batch.x, expected.x)
    assert torch.equal(batch.edge_index, expected.edge_index)


def test_damaged_cache_files_are_recomputed(cache_dir: str) -> None:
    tok = make(cache_dir)
    tok([ASPIRIN])
    path = tok.cache_path(ASPIRIN)
    path.write_bytes(b"not an npz file")
    fresh = make(cache_dir)
    batch = fresh([ASPIRIN])
    assert fresh.stats.disk_errors == 1 and fresh.stats.featurised == 1
    assert batch.x.shape[0] == 13 + 4 + 1
    with np.load(path, allow_pickle=False) as stored:  # rewritten
        assert stored["atom_x"].shape == (13, fresh.feature_dim)


def test_memory_cache_is_bounded(cache_dir: str) -> None:
    tok = make(cache_dir, memory_cache=2, disk_cache=False)
    tok(SMILES)
    assert len(tok._memory) == 2
    tok(SMILES[-2:])
    assert tok.stats.memory_hits == 2 and tok.stats.featurised == len(SMILES)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("", "empty SMILES"),
        ("   ", "empty SMILES"),
        ("C1CC", "syntax error"),
        ("C(C)(C)(C)(C)C", "valence"),
        ("c1cccc1", "Kekulize"),
        (42, "expected a SMILES string"),
        (None, "expected a SMILES string"),
    ],
)
def test_check_item_names_the_reason(cache_dir: str, item: object, reason: str) -> None:
    tok = make(cache_dir)
    found = tok.check_item(item)
    assert found is not None and reason.lower() in found.lower()


def test_invalid_items_in_a_batch_raise_input_error(cache_dir: str) -> None:
    tok = make(cache_dir)
    assert tok.check_item(ASPIRIN) is None
    with pytest.raises(InputError, match="item 1 of the batch"):
        tok([ASPIRIN, "C1CC"])
    with pytest.raises(InputError, match="empty batch"):
        tok([])


def test_single_atoms_and_a_huge_molecule(cache_dir: str) -> None:
    tok = make(cache_dir, max_atoms=128, max_motifs=32)
    # a 600-atom polyether: BRICS cuts every C-O bond, so it has hundreds of motifs
    huge = "C" + "COC" * 200
    batch = tok(["[Na+]", "C", huge])
    assert batch.num_atoms.tolist() == [1, 1, 601]
    assert batch.atom_width == 128 and batch.motif_width == 32  # bounded padded outputs
    assert int(batch.num_motifs[2]) > 32
    assert batch.x.shape[0] == 1 + 1 + 1 + 1 + 601 + int(batch.num_motifs[2]) + 1
    assert torch.isfinite(batch.x).all()


def test_parse_smiles_silences_rdkit_and_explains(capfd: pytest.CaptureFixture[str]) -> None:
    mol, reason = parse_smiles("C1CC")
    assert mol is None and "syntax" in str(reason)
    mol, reason = parse_smiles("CCO")
    assert mol is not None and reason is None
    assert "SMILES Parse Error" not in capfd.readouterr().err
