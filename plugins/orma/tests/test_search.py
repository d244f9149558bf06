"""Molecule search (index, search, rerank, bad input), comparable score levels, and explain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from repmix.sdk import (
    ArtifactError,
    Examples,
    InputError,
    LocatedConfig,
    build_model,
    plan_model,
)
from repmix.sdk.testing import run_cli
from repmix_orma.scoring import (
    LevelRetrievalEvaluator,
    combine_levels,
    rank_metrics,
    ranks_of_positives,
    zscore,
)
from repmix_orma.search import MoleculeIndex, build_index

LIBRARY = [
    "CC(=O)Oc1ccccc1C(=O)O", "CCO", "CCCO", "CCCCO", "c1ccccc1O", "c1ccccc1N", "CC(N)C(=O)O",
    "OC(=O)CCC(=O)O", "CCN(CC)CC", "c1ccc2ccccc2c1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CCOC(=O)C",
    "NCCO", "OCC(O)CO", "CC(=O)N", "C1CCCCC1", "C1CCOC1", "c1ccncc1", "CS(=O)(=O)N", "ClCCCl",
]  # fmt: skip
QUERIES = ["an aromatic carboxylic acid", "a short alcohol", "a cyclic ether", "an amine"]


def tiny_model(bert: str, seed: int = 0, second: bool = True):
    towers = {
        "text": {
            "tokenizer": {"type": "std.hf-tokenizer", "model": bert, "max_length": 16},
            "encoder": {"type": "std.hf-transformer", "model": bert},
            "poolers": {
                "sentence": {"type": "std.mean", "source": "token"},
                "head": {"type": "orma.mlp", "source": "sentence", "hidden": [16], "dim": 12, "dropout": 0.0},
            },
        },
        "molecule": {
            "tokenizer": {"type": "orma.morgan-fingerprint", "size": 128},
            "encoder": {"type": "orma.mlp", "hidden": [32], "dim": 12, "dropout": 0.0},
            "poolers": {"molecule2": {"type": "orma.mlp", "source": "molecule", "hidden": [8], "dim": 12,
                                      "dropout": 0.0}},
        },
    }
    alignments = {"global": {"type": "std.cosine", "between": ["text.head", "molecule.molecule"]}}
    losses = [{"type": "std.info-nce", "on": "global", "learnable_temperature": True}]  # a 0-d parameter
    if second:
        alignments["extra"] = {"type": "std.dot", "between": ["text.head", "molecule.molecule2"]}
        losses.append({"type": "std.info-nce", "on": "extra", "weight": 0.5})
    cfg = LocatedConfig({"model": {"towers": towers, "alignments": alignments, "losses": losses}})
    return build_model(plan_model(cfg), seed=seed).eval()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "lib.tsv"
    path.write_text("cid\tsmiles\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(LIBRARY)))
    return path


def test_search_top_k_equals_brute_force(tiny_bert_dir: str, library: Path, tmp_path: Path) -> None:
    model = tiny_model(tiny_bert_dir)
    info = build_index(model, library, tmp_path / "lib", kind="flat")
    assert info["count"] == len(LIBRARY) and info["metric"] == "cosine" and info["alignment"] == "global"
    index = MoleculeIndex.open(tmp_path / "lib", model)
    brute = model.similarity(QUERIES, LIBRARY, alignment="global")
    for q, row in zip(QUERIES, brute):
        hits = index.search(q, k=5)
        assert [h.row for h in hits] == list(np.argsort(-row, kind="stable")[:5])
        np.testing.assert_allclose([h.score for h in hits], np.sort(row)[::-1][:5], rtol=1e-5, atol=1e-6)
        assert [h.smiles for h in hits] == [LIBRARY[h.row] for h in hits]


def test_rerank_equals_brute_force_multi_level_score(tiny_bert_dir: str, library: Path, tmp_path: Path) -> None:
    model = tiny_model(tiny_bert_dir)
    build_index(model, library, tmp_path / "lib")
    index = MoleculeIndex.open(tmp_path / "lib", model)
    n = 8
    for q in QUERIES:
        first = index.search(q, k=n)
        rows = [h.row for h in first]
        g = model.similarity(q, [LIBRARY[r] for r in rows], alignment="global")[0]
        e = model.similarity(q, [LIBRARY[r] for r in rows], alignment="extra")[0]
        expected = 1.0 * g + 0.5 * e  # the loss weights
        hits = index.search(q, k=n, rerank=n)
        assert sorted(h.row for h in hits) == sorted(rows)
        assert [h.row for h in hits] == [rows[i] for i in np.argsort(-expected, kind="stable")]
        np.testing.assert_allclose([h.score for h in hits], np.sort(expected)[::-1], rtol=1e-5, atol=1e-6)


def test_ivf_and_hnsw_indexes_find_the_exact_top_hit(tiny_bert_dir: str, library: Path, tmp_path: Path) -> None:
    model = tiny_model(tiny_bert_dir)
    build_index(model, library, tmp_path / "flat")
    flat = MoleculeIndex.open(tmp_path / "flat", model)
    for kind in ("ivf", "hnsw"):
        build_index(model, library, tmp_path / kind, kind=kind, nlist=2)
        approx = MoleculeIndex.open(tmp_path / kind, model)
        for q in QUERIES:
            assert approx.search(q, k=1)[0].row == flat.search(q, k=1)[0].row


def test_bad_input_through_the_cli(tiny_bert_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model(tiny_bert_dir)
    saved = model.save(tmp_path / "model")
    lib = tmp_path / "lib.smi"
    lib.write_text("smiles name\nCCO ethanol\nC1CC broken\n\nc1ccccc1 benzene\nnot_smiles x\nCCN ethylamine\n")
    assert run_cli(["index", str(saved), "--input", str(lib), "-o", str(tmp_path / "lib"), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "skipped 2 invalid SMILES (lines 3, 6)" in out.err
    assert "indexed 3 molecules" in out.out
    assert run_cli(["search", str(tmp_path / "lib"), "an alcohol", "-k", "2", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and '"smiles"' in lines[0]
    # an empty query
    assert run_cli(["search", str(tmp_path / "lib"), "  "]) == 2
    assert "empty query" in capsys.readouterr().err
    # an empty library, and one with only invalid SMILES
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert run_cli(["index", str(saved), "--input", str(empty), "-o", str(tmp_path / "x")]) == 2
    assert "is empty" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("cid\tsmiles\n1\tC1CC\n")
    assert run_cli(["index", str(saved), "--input", str(bad), "-o", str(tmp_path / "x")]) == 2
    assert "no usable molecule (1 invalid SMILES skipped)" in capsys.readouterr().err
    # an index built by another model is refused
    other = tiny_model(tiny_bert_dir, seed=1).save(tmp_path / "other")
    assert run_cli(["search", str(tmp_path / "lib"), "an alcohol", "--model", str(other)]) == 2
    assert "built by another model" in capsys.readouterr().err
    with pytest.raises(ArtifactError, match="not a molecule index"):
        MoleculeIndex.open(tmp_path, model)


def test_zscore_and_fallback_combinations() -> None:
    s1 = torch.tensor([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    s2 = torch.tensor([[0.0, 100.0, 0.0], [0.0, 300.0, 0.0]])  # candidates 0 and 2: "no motif"
    weighted = combine_levels([s1, s2], [0.5, 0.5], "weighted")
    torch.testing.assert_close(weighted, 0.5 * s1 + 0.5 * s2)
    z = combine_levels([s1, s2], [0.5, 0.5], "zscore")
    torch.testing.assert_close(z, 0.5 * zscore(s1) + 0.5 * zscore(s2))
    torch.testing.assert_close(zscore(s1).mean(dim=1), torch.zeros(2))
    empty = [torch.zeros(2, 3, dtype=torch.bool), torch.tensor([[True, False, True]] * 2)]
    f = combine_levels([s1, s2], [0.5, 0.5], "zscore-fallback", empty)
    # an empty level defers to the first level: candidates 0 and 2 get the first level's z twice
    torch.testing.assert_close(f[:, [0, 2]], zscore(s1)[:, [0, 2]])
    torch.testing.assert_close(zscore(torch.ones(1, 4)), torch.zeros(1, 4))
    ranks = ranks_of_positives(torch.tensor([[0.9, 0.1], [0.9, 0.1]]), torch.tensor([0, 1]))
    assert ranks.tolist() == [1, 2]
    m = rank_metrics(ranks, ["mrr", "hits@1", "mean_rank", "median_rank"])
    assert m == {"mrr": 0.75, "hits@1": 0.5, "mean_rank": 1.5, "median_rank": 1.0}


def test_level_retrieval_rerank_over_everything_equals_full(tiny_bert_dir: str) -> None:
    model = tiny_model(tiny_bert_dir)
    data = Examples({"text": QUERIES * 2, "molecule": LIBRARY[:8]})
    full = LevelRetrievalEvaluator(
        LevelRetrievalEvaluator.Config(levels={"global": 1.0, "extra": 0.5}, metrics=["mrr", "mean_rank"]), None
    ).evaluate(model, data)
    rer = LevelRetrievalEvaluator(
        LevelRetrievalEvaluator.Config(levels={"global": 1.0, "extra": 0.5}, metrics=["mrr", "mean_rank"],
                                       rerank=8), None
    ).evaluate(model, data)
    assert full.keys() == rer.keys()
    for k in full:
        assert full[k] == pytest.approx(rer[k]), k
    # the first level alone equals a brute-force ranking with the model's own similarity
    s = torch.from_numpy(model.similarity(data.columns["text"], data.columns["molecule"], alignment="global"))
    expected = rank_metrics(ranks_of_positives(s, torch.arange(8)), ["mrr"])["mrr"]
    assert full["level:global/text->molecule/mrr"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(Exception, match="not an alignment"):
        LevelRetrievalEvaluator(LevelRetrievalEvaluator.Config(levels={"nope": 1.0}), None).evaluate(model, data)


def test_explain_refuses_a_model_without_fine_levels(tiny_bert_dir: str) -> None:
    from repmix_orma.explain import explain_pair

    with pytest.raises(InputError, match="fine-grained"):
        explain_pair(tiny_model(tiny_bert_dir), "an alcohol", "CCO")
    with pytest.raises(InputError, match="empty text"):
        explain_pair(tiny_model(tiny_bert_dir), " ", "CCO")


def test_explain_draws_token_atom_weights_and_the_ot_assignment(tiny_bert_dir: str, tmp_path: Path) -> None:
    from repmix.sdk import load
    from repmix_orma.explain import draw_explanation, explain_pair

    examples = Path(__file__).resolve().parents[3] / "examples"
    text = "model.towers.text"
    model = load(examples / "orma-demo.yaml", [
        f"{text}.tokenizer.model={tiny_bert_dir}", f"{text}.encoder.model={tiny_bert_dir}",
        *(f"{text}.poolers.{p}.dim=32" for p in ("sentence", "token", "multitoken")),
        "model.towers.molecule.encoder.dim=32", "model.alignments.mid.iterations=5",
        f"model.towers.molecule.tokenizer.cache_dir={tmp_path / 'cache'}",
    ])
    smiles = "CC(=O)Oc1ccccc1C(=O)O"  # aspirin: BRICS motifs
    exp = explain_pair(model, "an acetyl ester of salicylic acid", smiles)
    assert exp.tokens[0] == "[CLS]" and exp.tokens[-1] == "[SEP]"
    assert exp.atom_weights is not None and exp.atom_weights.shape == (len(exp.tokens), 13)
    np.testing.assert_allclose(exp.atom_weights.sum(axis=1), 1.0, atol=1e-4)  # ORMA's weights sum to 1 per token
    assert exp.motifs and exp.assignment is not None and len(exp.assignment) == len(exp.tokens)
    assert all(-1 <= m < len(exp.motifs) for m in exp.assignment)
    png = draw_explanation(exp, tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run_cli(["explain", str(examples / "orma-demo.yaml"), "x", "CCO", "-o", str(tmp_path / "b.txt")]) == 2
