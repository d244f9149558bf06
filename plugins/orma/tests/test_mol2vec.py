"""mol2vec: sentences equal mol2vec's, training is deterministic for a seed, the table round-trips, atoms use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem
from repmix.sdk import ArtifactError, ConfigError, Runtime
from repmix.sdk.testing import run_cli
from repmix_orma.graph import MoleculeGraphTokenizer
from repmix_orma.mol2vec import UNK, Mol2VecTable, mol2vec_sentence, train_mol2vec

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O", "CCO", "CCCO", "CCCCO", "c1ccccc1O", "c1ccccc1N", "CC(N)C(=O)O",
    "OC(=O)CCC(=O)O", "CCN(CC)CC", "c1ccc2ccccc2c1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CCOC(=O)C",
    "NCCO", "OCC(O)CO", "CC(=O)N", "C1CCCCC1", "C1CCOC1", "c1ccncc1", "CS(=O)(=O)N", "ClCCCl",
] * 2  # fmt: skip


def mol2alt_sentence(mol: Chem.Mol, radius: int) -> list[str]:
    """mol2vec's own ``mol2alt_sentence`` (mol2vec/features.py), transcribed: the reference."""
    radii = list(range(int(radius) + 1))
    info: dict[int, tuple] = {}
    AllChem.GetMorganFingerprint(mol, radius, bitInfo=info)
    mol_atoms = [a.GetIdx() for a in mol.GetAtoms()]
    dict_atoms = {x: {r: None for r in radii} for x in mol_atoms}
    for element in info:  # noqa: PLC0206 - mol2vec's code, transcribed
        for atom_idx, radius_at in info[element]:
            dict_atoms[atom_idx][radius_at] = element
    identifiers_alt = []
    for atom in dict_atoms:
        for r in radii:
            identifiers_alt.append(dict_atoms[atom][r])
    return list(map(str, [x for x in identifiers_alt if x]))


@pytest.mark.parametrize("smi", sorted(set(SMILES)))
def test_sentences_equal_mol2vec(smi: str) -> None:
    mol = Chem.MolFromSmiles(smi)
    assert mol2vec_sentence(mol, 1) == mol2alt_sentence(mol, 1)


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, _ = train_mol2vec(SMILES, dim=16, window=5, epochs=2, seed=0)
    b, _ = train_mol2vec(SMILES, dim=16, window=5, epochs=2, seed=0)
    c, _ = train_mol2vec(SMILES, dim=16, window=5, epochs=2, seed=1)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.identifiers, b.identifiers)
    assert not np.allclose(a.vectors, c.vectors)
    # in a fresh process (another hash salt) too: the CLI writes the same vectors
    out = tmp_path / "m.safetensors"
    lib = tmp_path / "mols.smi"
    lib.write_text("\n".join(SMILES) + "\n")
    assert run_cli(["orma", "mol2vec", "--molecules", str(lib), "-o", str(out), "--dim", "16",
                    "--window", "5", "--epochs", "2", "--seed", "0"]) == 0
    np.testing.assert_array_equal(Mol2VecTable.load(out).vectors, a.vectors)


def test_unk_rare_identifiers_and_round_trip(tmp_path: Path) -> None:
    table, skipped = train_mol2vec([*SMILES, "not-a-smiles"], dim=8, epochs=1, min_count=3)
    assert skipped and "molecule 41" in skipped[0]
    assert table.identifiers[table.unk_row] == -1 and table.unk_row == 0
    # every identifier in the table occurs at least min_count times
    assert (table.counts[1:] >= 3).all()
    path = table.save(tmp_path / "t.safetensors")
    back = Mol2VecTable.load(path)
    np.testing.assert_array_equal(back.vectors, table.vectors)
    assert back.metadata["min_count"] == "3"
    # an atom whose identifiers are unknown gets the UNK vector
    rows = back.atom_rows(Chem.MolFromSmiles("[Se]=[Se]"))
    assert (rows == back.unk_row).all()
    assert UNK == "UNK"


def test_not_a_table_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"nonsense")
    with pytest.raises(ArtifactError, match="not a mol2vec table"):
        Mol2VecTable.load(bad)
    with pytest.raises(ArtifactError, match="does not exist"):
        Mol2VecTable.load(tmp_path / "missing.safetensors")


def test_molecule_graph_atoms_take_mol2vec_vectors(tmp_path: Path, cache_dir: str) -> None:
    table, _ = train_mol2vec(SMILES, dim=8, epochs=1, min_count=1)
    path = table.save(tmp_path / "t.safetensors")
    cfg = MoleculeGraphTokenizer.Config(atom_features="mol2vec", mol2vec=str(path), cache_dir=cache_dir)
    tok = MoleculeGraphTokenizer(cfg, Runtime())
    assert tok.feature_dim == 8
    smi = "CC(=O)Oc1ccccc1C(=O)O"
    batch = tok([smi, "CCO"])
    mol = Chem.MolFromSmiles(smi)
    atoms = batch.x[batch.node_level == 0][: mol.GetNumAtoms()].numpy()
    # radius-1 identifier's vector, else radius 0's, else UNK (all known here: min_count 1)
    from repmix_orma.mol2vec import atom_identifiers

    ids = atom_identifiers(mol, 1)
    expected = np.stack([table.vectors[table.row(i.get(1, i[0]))] for i in ids])
    np.testing.assert_allclose(atoms, expected)
    both = MoleculeGraphTokenizer(
        MoleculeGraphTokenizer.Config(atom_features="both", mol2vec=str(path), cache_dir=cache_dir), Runtime()
    )
    assert both.feature_dim == 57 + 8
    assert both.saved_files() == {"mol2vec": path}
    with pytest.raises(ConfigError, match="needs the mol2vec table"):
        MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(atom_features="mol2vec"), Runtime())


# ---------------------------------------------------------------- learned identifier embeddings
MIXED = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "O=C(NC1CCCCC1)c1ccccc1", "C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"]


def _tokenizers(tmp_path: Path, cache_dir: str, **extra: object) -> tuple[Mol2VecTable, MoleculeGraphTokenizer, MoleculeGraphTokenizer]:
    table, _ = train_mol2vec(SMILES, dim=8, epochs=1, min_count=2)
    path = table.save(tmp_path / "t.safetensors")
    fixed = MoleculeGraphTokenizer(
        MoleculeGraphTokenizer.Config(atom_features="mol2vec", mol2vec=str(path), cache_dir=cache_dir), Runtime()
    )
    learned = MoleculeGraphTokenizer(
        MoleculeGraphTokenizer.Config(atom_features="identifiers", mol2vec=str(path), cache_dir=cache_dir, **extra),
        Runtime(),
    )
    return table, fixed, learned


def test_identifier_embeddings_start_equal_to_mol2vec_features(tmp_path: Path, cache_dir: str) -> None:
    import torch
    from repmix_orma.gnn import HierarchicalGNN

    _, fixed, learned = _tokenizers(tmp_path, cache_dir)
    assert learned.feature_dim == fixed.feature_dim == 8
    a, b = fixed(MIXED), learned(MIXED)
    assert b.x.shape == (a.x.shape[0], 0) and b.atom_ids is not None and b.node_pool is not None
    assert int(a.num_motifs.min()) == 0 < int(a.num_motifs.max())  # molecules with and without motifs
    # every node's input (atoms, motif means, molecule means) equals the fixed-feature collation
    emb = torch.as_tensor(learned.atom_identifier_init)
    torch.testing.assert_close(torch.sparse.mm(b.node_pool, emb[b.atom_ids]), a.x, rtol=0, atol=1e-6)
    # and so does the encoder's output, for the same weights
    torch.manual_seed(0)
    enc_a = HierarchicalGNN(HierarchicalGNN.Config(dim=16), Runtime(tokenizer=fixed)).eval()
    torch.manual_seed(0)
    enc_b = HierarchicalGNN(HierarchicalGNN.Config(dim=16), Runtime(tokenizer=learned)).eval()
    assert enc_a.atom_embedding is None and enc_b.atom_embedding is not None
    out_a, out_b = enc_a(a), enc_b(b)
    for level in ("atom", "motif", "molecule"):
        torch.testing.assert_close(out_b[level].hidden, out_a[level].hidden, rtol=0, atol=1e-5)
    # the table trains: the rows of the batch's atoms get gradient, the others none
    enc_b.train()
    enc_b(b)["molecule"].hidden.sum().backward()
    grad = enc_b.atom_embedding.weight.grad
    used = torch.zeros(grad.shape[0], dtype=torch.bool)
    used[b.atom_ids] = True
    assert grad[used].abs().sum(-1).gt(0).all() and grad[~used].abs().sum() == 0
    with pytest.raises(ValueError, match="no atom embedding table"):
        enc_a(b)


def test_identifier_buckets_separate_unknown_substructures(tmp_path: Path, cache_dir: str) -> None:
    table, _, shared = _tokenizers(tmp_path, cache_dir)
    _, _, bucketed = _tokenizers(tmp_path, cache_dir, identifier_buckets=64)
    rare = "[Se]=[Se].BrC(Br)(Br)Br"  # identifiers not in the table
    v = len(table.identifiers)
    ids_shared = shared([rare]).atom_ids.numpy()
    ids_bucketed = bucketed([rare]).atom_ids.numpy()
    assert (ids_shared == table.unk_row).all()
    assert (ids_bucketed >= v).all() and (ids_bucketed < v + 64).all()
    assert len(set(ids_bucketed[:2].tolist()) | set(ids_bucketed[2:].tolist())) >= 2  # Se and Br/C told apart
    # deterministic (a stable hash, not Python's salted one) and every bucket starts at the UNK vector
    np.testing.assert_array_equal(ids_bucketed, table.atom_rows(Chem.MolFromSmiles(rare), buckets=64))
    assert bucketed.atom_identifier_init.shape == (v + 64, 8)
    np.testing.assert_array_equal(bucketed.atom_identifier_init[v:], np.repeat(table.vectors[[table.unk_row]], 64, 0))
    # known atoms keep their table rows
    known = "CC(=O)Oc1ccccc1C(=O)O"
    np.testing.assert_array_equal(bucketed([known]).atom_ids.numpy(), table.atom_rows(Chem.MolFromSmiles(known)))
    with pytest.raises(ConfigError, match="needs the mol2vec table"):
        MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(atom_features="identifiers"), Runtime())
