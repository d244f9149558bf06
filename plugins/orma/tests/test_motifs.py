"""BRICS motif decomposition, checked by hand on small molecules.

Each expected motif list below was worked out from the SMILES (atom indices
in SMILES order) and RDKit's BRICS rules: which bonds BRICS cuts (given in
the comment as ``atom-atom (labels)``), the fragments left, and whether a
fragment holds more than one ring. Order follows HiMol: fragments by their
first uncut bond, then atoms whose every bond was cut, then ring motifs.
"""

from __future__ import annotations

import pytest
from rdkit import Chem
from repmix_orma.motifs import brics_fragments, motif_decomp


def decomp(smiles: str, ring_split: str = "subtract") -> list[list[int]]:
    return motif_decomp(Chem.MolFromSmiles(smiles), ring_split)  # type: ignore[arg-type]


CASES: list[tuple[str, str, list[list[int]]]] = [
    # no BRICS bond: the only fragment is the whole molecule, dropped -> 0 motifs (fallback)
    ("benzene", "c1ccccc1", []),
    ("ethanol", "CCO", []),
    ("naphthalene alone", "c1ccc2ccccc2c1", []),
    ("phenanthrene", "c1ccc2c(c1)ccc1ccccc12", []),
    ("testosterone (fused rings, no BRICS bond)", "C[C@]12CC[C@H]3[C@@H](CCC4=CC(=O)CC[C@]34C)[C@@H]1CC[C@@H]2O", []),
    # no bond at all
    ("single atom", "C", []),
    ("salt without bonds", "[Na+].[Cl-]", []),
    # aspirin: cuts C1-O3 (1,3), O3-c4 (3,16), c9-C10 (16,6):
    # acetyl {0,1,2}, ring {4..9}, carboxy {10,11,12}, then the ether O {3} whose bonds were both cut
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O", [[0, 1, 2], [4, 5, 6, 7, 8, 9], [10, 11, 12], [3]]),
    # biphenyl: cuts the aryl-aryl bond 3-4 (16,16): two phenyls
    ("biphenyl", "c1ccc(-c2ccccc2)cc1", [[0, 1, 2, 3, 10, 11], [4, 5, 6, 7, 8, 9]]),
    # ethyl acetate: cuts C3-O2 (1,3) and O2-C1 (3,4): ethyl {0,1}, acetyl {3,4,5}, ether O {2}
    ("ethyl acetate", "CCOC(C)=O", [[0, 1], [3, 4, 5], [2]]),
    # triethylamine: the three C-N bonds (4,5): three ethyls, then N
    ("triethylamine", "CCN(CC)CC", [[0, 1], [3, 4], [5, 6], [2]]),
    # N-cyclohexylbenzamide: cuts C1-N2 (1,5), N2-C3 (5,15), C1-c9 (6,16):
    # carbonyl {0,1}, cyclohexyl {3..8}, phenyl {9..14}, amide N {2}
    ("N-cyclohexylbenzamide", "O=C(NC1CCCCC1)c1ccccc1", [[0, 1], [3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14], [2]]),
    # ibuprofen: cuts C3-c4 (8,16) and C10-c7 (8,16): isobutyl, benzene ring, 1-carboxyethyl
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]),
    # 1-methyl-2-methoxynaphthalene: cuts O1-c2 (3,16): methoxy {0,1}; the naphthalene + methyl fragment
    # holds 2 rings -> its two SSSR rings become motifs and the methyl {12} is what is left
    ("naphthalene inside a larger molecule", "COc1ccc2ccccc2c1C",
     [[0, 1], [12], [2, 3, 4, 5, 10, 11], [5, 6, 7, 8, 9, 10]]),
]


@pytest.mark.parametrize(("name", "smiles", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hand_checked_decomposition(name: str, smiles: str, expected: list[list[int]]) -> None:
    assert decomp(smiles) == expected


def test_fused_rings_with_substituents_on_both_rings() -> None:
    # 2,6-dimethyl-1-methoxynaphthalene: cut O12-c11 (3,16). The ring fragment {0..11} has two rings:
    # "subtract" keeps the two methyls {0, 7} as one (disconnected) remainder motif, "empty" drops them.
    smiles = "Cc1ccc2cc(C)ccc2c1OC"
    rings = [[1, 2, 3, 4, 10, 11], [4, 5, 6, 8, 9, 10]]
    assert decomp(smiles, "subtract") == [[0, 7], [12, 13], *rings]
    assert decomp(smiles, "empty") == [[12, 13], *rings]


def test_fragments_before_filtering() -> None:
    mol = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    fragments, cut = brics_fragments(mol)
    assert fragments == [[0, 1, 2], [4, 5, 6, 7, 8, 9], [10, 11, 12], [3]]
    assert int(cut.sum()) == 3
    # a molecule without BRICS bonds is one fragment: the whole molecule
    assert brics_fragments(Chem.MolFromSmiles("c1ccccc1"))[0] == [[0, 1, 2, 3, 4, 5]]


def test_isolated_atoms_belong_to_no_motif() -> None:
    # ethanol plus a sodium ion: the CCO fragment is not the whole molecule, so it is a motif; Na is in none
    assert decomp("CCO.[Na+]") == [[0, 1, 2]]


def test_unknown_ring_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="ring_split"):
        decomp("c1ccccc1", "drop")
