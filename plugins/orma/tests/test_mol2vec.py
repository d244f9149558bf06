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
