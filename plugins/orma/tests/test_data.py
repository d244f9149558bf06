"""``orma.chebi20``: splits, the CID-hash holdout, ORMA's bondless filter, errors; and ``orma.demo-molecules``."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from rdkit import Chem
from repmix.sdk import InputError, Runtime
from repmix_orma.data import ChEBI20Dataset, hash_holdout
from repmix_orma.demo import DemoMoleculesDataset, generate


def chebi(path: Path | str, cache_dir: str, **options: object) -> ChEBI20Dataset:
    return ChEBI20Dataset(ChEBI20Dataset.Config(path=str(path), cache_dir=cache_dir, **options), Runtime())


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


GOOD = "cid\tsmiles\tdescription\n1\tCCO\tThe molecule is ethanol.\n2\tc1ccccc1\tThe molecule is benzene.\n3\t[Na+]\tThe molecule is a sodium ion.\n"


# ------------------------------------------------------------------------ real ChEBI-20
@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One cache for the real-data tests: the file's SMILES are checked with RDKit once."""
    return str(tmp_path_factory.mktemp("chebi20-cache"))


def test_real_splits_are_disjoint_and_drop_bondless_molecules(chebi20_dir: Path, real_cache: str) -> None:
    cache_dir = real_cache
    data = chebi(chebi20_dir, cache_dir)
    train, test, everything = data.load("train"), data.load("test"), data.load("all")
    assert len(everything) == 3286 and everything.skipped == 15  # 3,301 rows, 15 without bonds (SOURCE.md)
    assert len(train) + len(test) == 3286
    assert not set(train.ids or []) & set(test.ids or [])
    assert 0.18 < len(test) / 3286 < 0.22
    assert set(train.columns) == {"text", "molecule"}
    assert all(d.startswith("The molecule") for d in train.columns["text"][:50])
    assert any("without bonds" in n for n in everything.notes)
    assert all(Chem.MolFromSmiles(s).GetNumBonds() > 0 for s in test.columns["molecule"][:100])


def test_text2mol_descriptions_and_extra_molecules(chebi20_dir: Path, real_cache: str) -> None:
    cache_dir = real_cache
    molt5 = chebi(chebi20_dir, cache_dir).load("test")
    names = chebi(chebi20_dir, cache_dir, descriptions="text2mol").load("test")
    assert names.ids == molt5.ids and names.columns["molecule"] == molt5.columns["molecule"]
    assert sum(a != b for a, b in zip(names.columns["text"], molt5.columns["text"])) > 0.9 * len(molt5)
    extra = chebi(chebi20_dir, cache_dir, split="extra", limit=500).load()
    assert list(extra.columns) == ["molecule"] and len(extra) == 500
    assert not set(extra.ids or []) & set(molt5.ids or [])


def test_holdout_depends_on_cids_only() -> None:
    ids = [str(i) for i in range(1000)]
    held = hash_holdout(ids, 0.2, seed=0)
    assert len(held) == 200
    assert hash_holdout(list(reversed(ids)), 0.2, seed=0) == held  # row order does not matter
    assert hash_holdout(ids[:500], 0.2, seed=0) != held  # a different set has its own cut-off...
    assert hash_holdout(ids, 0.2, seed=1) != held  # ...and the seed changes the split
    # a CID keeps its side when unrelated rows are added, up to the cut-off moving
    grown = hash_holdout(ids + [str(i) for i in range(1000, 1100)], 0.2, seed=0)
    assert len(held & grown) > 180


def test_holdout_is_the_same_whatever_the_row_order(tmp_path: Path, cache_dir: str) -> None:
    rows = [f"{i}\tC{'C' * (i % 7)}O\ttext {i}" for i in range(1, 41)]
    a = write(tmp_path / "a", "validation.tsv", "cid\tsmiles\tdescription\n" + "\n".join(rows) + "\n")
    b = write(tmp_path / "b", "validation.tsv", "cid\tsmiles\tdescription\n" + "\n".join(reversed(rows)) + "\n")
    test_a = chebi(a, cache_dir, holdout=0.25).load("test")
    test_b = chebi(b, cache_dir, holdout=0.25).load("test")
    assert len(test_a) == 10 and sorted(test_a.ids or []) == sorted(test_b.ids or [])


# ------------------------------------------------------------------------- small files
def test_bondless_molecules_are_dropped_and_counted(tmp_path: Path, cache_dir: str) -> None:
    folder = write(tmp_path, "validation.tsv", GOOD)
    out = chebi(folder, cache_dir).load("all")
    assert out.columns["molecule"] == ["CCO", "c1ccccc1"] and out.skipped == 1
    assert any("[Na+]" in n for n in out.notes)
    kept = chebi(folder, cache_dir, drop_bondless=False).load("all")
    assert len(kept) == 3 and kept.skipped == 0


def test_invalid_smiles_names_file_and_line(tmp_path: Path, cache_dir: str) -> None:
    folder = write(tmp_path, "validation.tsv", GOOD + "4\tC1CC\tA broken ring.\n")
    with pytest.raises(InputError, match=r"validation.tsv:5: invalid SMILES"):
        chebi(folder, cache_dir).load("all")
    out = chebi(folder, cache_dir, on_error="skip").load("all")
    assert len(out) == 2 and out.skipped == 2  # one unreadable, one without bonds
    assert any("validation.tsv:5" in n for n in out.notes)


def test_malformed_rows_and_missing_columns(tmp_path: Path, cache_dir: str) -> None:
    folder = write(tmp_path / "rows", "validation.tsv", GOOD + "5\tCCN\n6\t\tempty smiles\n")
    with pytest.raises(InputError, match=r"validation.tsv:5: expected 3 tab-separated fields \(cid, smiles, description\), found 2"):
        chebi(folder, cache_dir).load("all")
    out = chebi(folder, cache_dir, on_error="skip").load("all")
    assert out.skipped == 3 and len(out) == 2
    header = write(tmp_path / "header", "validation.tsv", "cid\tSMILES\ttext\n1\tCCO\tx\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) .*'smiles' \(did you mean 'SMILES'\?\)") as err:
        chebi(header, cache_dir).load()
    assert "'description'" in err.value.message and "columns found: cid, SMILES, text" in str(err.value)
    renamed = chebi(header, cache_dir, fields={"text": "text", "molecule": "SMILES"}, smiles_column="SMILES", holdout=0)
    assert renamed.load("train").columns == {"text": ["x"], "molecule": ["CCO"]}
    with pytest.raises(InputError, match="does not exist"):
        chebi(tmp_path / "nowhere", cache_dir).load()
    with pytest.raises(InputError, match="no split 'tset'.*did you mean 'test'"):
        chebi(folder, cache_dir).load("tset")
    with pytest.raises(InputError, match="holdout: 0"):
        chebi(folder, cache_dir, holdout=0).load("test")
    with pytest.raises(ValueError, match="smiles_column"):
        ChEBI20Dataset.Config(path="x", fields={"text": "description", "molecule": "canonical"})


def test_second_load_does_no_rdkit_work(tmp_path: Path, cache_dir: str) -> None:
    folder = write(tmp_path, "validation.tsv", GOOD)
    first = chebi(folder, cache_dir).load("all")
    with mock.patch("rdkit.Chem.MolFromSmiles", side_effect=AssertionError("RDKit was called")) as parse:
        again = chebi(folder, cache_dir).load("all")
    parse.assert_not_called()
    assert again.columns == first.columns and again.skipped == first.skipped


# ---------------------------------------------------------------------------- demo data
def test_demo_generator_is_deterministic_and_unique() -> None:
    a, b = generate(300, seed=3), generate(300, seed=3)
    assert a == b
    assert generate(300, seed=4) != a
    assert len({m.smiles for m in a}) == 300 and len({m.description for m in a}) == 300
    for m in a:
        mol = Chem.MolFromSmiles(m.smiles)
        assert mol is not None and Chem.MolToSmiles(mol) == m.smiles  # canonical
        assert m.description.startswith(f"The molecule is a{'n' if m.scaffold[0] in 'aeiou' else ''} {m.scaffold}")
        for name, position in m.substituents:
            assert f"{name} group at position {position}" in m.description


def test_demo_descriptions_follow_the_structure() -> None:
    from repmix_orma.demo import SCAFFOLDS, SUBSTITUENTS, _lowest_numbering, _symmetries

    benzene = next(s for s in SCAFFOLDS if s.name == "benzene")
    carboxy, chloro = (next(s for s in SUBSTITUENTS if s.name == n) for n in ("carboxy", "chloro"))
    symmetries = _symmetries(Chem.MolFromSmiles(benzene.smiles))
    assert len(symmetries) == 12  # the dihedral group of the hexagon
    # one group anywhere on benzene is "at position 1"; para is 1,4 whichever atoms it sits on
    assert _lowest_numbering([(carboxy, 4)], symmetries) == [(carboxy, 1)]
    assert _lowest_numbering([(chloro, 3), (carboxy, 6)], symmetries) == [(carboxy, 1), (chloro, 4)]
    # every description names its substituents once each, in position order
    for m in generate(200, seed=5):
        assert m.description.count(" group at position ") == len(m.substituents)
        positions = [p for _, p in m.substituents]
        assert positions == sorted(positions)


def test_demo_dataset_splits_and_cache(cache_dir: str) -> None:
    config = DemoMoleculesDataset.Config(size=120, seed=1, cache_dir=cache_dir)
    data = DemoMoleculesDataset(config, Runtime())
    train, test = data.load("train"), data.load("test")
    assert len(train) == 96 and len(test) == 24
    assert not set(train.columns["molecule"]) & set(test.columns["molecule"])
    assert data.cache_file().is_file()
    with mock.patch("repmix_orma.demo.generate", side_effect=AssertionError("generated again")):
        again = DemoMoleculesDataset(config, Runtime()).load("train")
    assert again.columns == train.columns
    with pytest.raises(InputError, match="no split"):
        data.load("extra")
