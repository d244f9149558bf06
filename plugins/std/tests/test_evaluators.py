"""Tests of the std evaluators: retrieval, sts, beir.

Metric code is checked on hand-computed cases and against torchmetrics'
retrieval metrics (an independent implementation) on random, tie-free inputs.
Evaluator plumbing is checked on tiny toy models (defined below) with the
std ``mean`` pooler and ``cosine`` / ``maxsim`` aligners.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Examples,
    Granularity,
    GranularitySpec,
    InputError,
    LocatedConfig,
    Runtime,
    Tokenizer,
    build_component,
    build_model,
    plan_model,
    temporary_component,
)
from repmix_std import evaluators
from repmix_std.datasets import BeirConfig, BeirDataset
from repmix_std.evaluators import (
    BeirEvalConfig,
    BeirEvaluator,
    RetrievalConfig,
    RetrievalEvaluator,
    StsEvalConfig,
    StsEvaluator,
    aligned_retrieval_metrics,
    alignment_scores,
    cosine_retrieval_metrics,
    ir_metrics,
    rank_metrics,
    ranks_from_scores,
)
from scipy.stats import pearsonr, spearmanr
from torch import nn

# --------------------------------------------------------------------------- toy components
# ``toy-words`` splits strings on spaces and hashes each word (crc32) to an id; ``toy-embed`` looks the
# ids up in a seeded embedding table and provides a ``token`` sequence granularity. The std ``mean``
# pooler and ``cosine`` / ``maxsim`` aligners complete the model. No pretrained weights, milliseconds.
VOCAB = 997
DIM = 16


class ToyWords(Tokenizer):
    """Whitespace words -> crc32 ids, right-padded with a mask."""

    class Config(ComponentConfig):
        pass

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        words = [str(x).split() or [""] for x in items]
        t = max(len(w) for w in words)
        ids = torch.zeros(len(words), t, dtype=torch.long)
        mask = torch.zeros(len(words), t, dtype=torch.bool)
        for i, ws in enumerate(words):
            ids[i, : len(ws)] = torch.tensor([zlib.crc32(w.encode()) % VOCAB for w in ws])
            mask[i, : len(ws)] = True
        return {"ids": ids, "mask": mask}

    def sort_key(self, item: Any) -> int:
        return len(str(item).split())


class ToyEmbed(Encoder):
    """A seeded embedding table; ``token`` granularity only."""

    class Config(ComponentConfig):
        dim: int = DIM

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.table = nn.Embedding(VOCAB, config.dim)  # type: ignore[attr-defined]

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim)})  # type: ignore[attr-defined]

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        return Encoded({"token": Granularity(self.table(batch["ids"]), batch["mask"])})


TOY_TOWER = {
    "tokenizer": {"type": "toy-words"},
    "encoder": {"type": "toy-embed"},
    "poolers": {"sentence": {"type": "mean"}},
}


@contextmanager
def toy_components() -> Iterator[None]:
    """Register ``toy-words`` and ``toy-embed`` for the duration of a ``with`` block."""
    with ExitStack() as stack:
        stack.enter_context(temporary_component("tokenizer", "toy-words", ToyWords))
        stack.enter_context(temporary_component("encoder", "toy-embed", ToyEmbed))
        yield


def toy_model(
    alignments: dict[str, Any], towers: tuple[str, str] = ("text", "molecule"), seed: int = 0, shared: bool = False
) -> Any:
    """Two toy towers (separate weights, or the second ``shared_with`` the first) with the given alignments.

    Call inside :func:`toy_components`.
    """
    second = {"shared_with": towers[0]} if shared else dict(TOY_TOWER)
    data = {
        "model": {
            "towers": {towers[0]: dict(TOY_TOWER), towers[1]: second},
            "alignments": alignments,
        }
    }
    return build_model(plan_model(LocatedConfig(data)), seed=seed)


ALIGNMENTS: dict[str, Any] = {
    "coarse": {"type": "cosine", "between": ["text.sentence", "molecule.sentence"]},
    "fine": {"type": "maxsim", "between": ["text.token", "molecule.token"]},
    "flipped": {"type": "maxsim", "between": ["molecule.token", "text.token"]},
}


tm = pytest.importorskip("torchmetrics.retrieval", reason="torchmetrics is in repmix-std's test extra")

#: Absolute tolerance of the torchmetrics cross-checks (float32 inside torchmetrics).
TOL = 1e-6


def distinct_positive_scores(n: int, m: int, g: torch.Generator) -> torch.Tensor:
    """Tie-free scores in (0, 1], exactly representable in float32.

    Positive because torchmetrics (1.9) counts a document with a prediction <= 0
    as irrelevant in MRR and recall.
    """
    return torch.stack([(torch.randperm(m, generator=g) + 1).double() / m for _ in range(n)])


def words(n: int, seed: int, vocab: int = 300) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(f"w{rng.randrange(vocab)}" for _ in range(rng.randint(1, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def toys() -> Any:
    with toy_components():
        yield


@pytest.fixture(scope="module")
def model(toys: Any) -> Any:
    return toy_model(ALIGNMENTS)


def retrieval(**kw: Any) -> RetrievalEvaluator:
    return RetrievalEvaluator(RetrievalConfig(progress=False, **kw), Runtime())


# =========================================================================== metric functions
SCORES = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.4, 0.4, 0.4]])


def test_ranks_hand_computed() -> None:
    diag = torch.arange(3)
    # row 0: nothing beats 0.9 -> 1; row 1: 0.8 beats 0.3 -> 2; row 2: three-way tie -> 1 (strictly greater only)
    assert ranks_from_scores(SCORES, diag).tolist() == [1, 2, 1]
    # reverse direction: column 0 -> 1; column 1 (0.3 vs 0.1, 0.4) -> 2; column 2 (0.4 vs 0.5, 0.8) -> 3
    assert ranks_from_scores(SCORES.T, diag).tolist() == [1, 2, 3]
    m = rank_metrics(torch.tensor([1, 2, 1]))
    assert m == pytest.approx(
        {"mrr": 2.5 / 3, "hits@1": 2 / 3, "hits@5": 1.0, "hits@10": 1.0, "mean_rank": 4 / 3, "median_rank": 1.0}
    )
    assert rank_metrics([1, 2, 3, 10], ["median_rank", "hits@2"]) == {"median_rank": 2.5, "hits@2": 0.5}
    nan = torch.tensor([[float("nan"), 0.1, 0.2], [0.3, float("nan"), 0.1]])
    assert ranks_from_scores(nan, torch.tensor([1, 0])).tolist() == [2, 1]
    assert ranks_from_scores(nan, torch.tensor([0, 1])).tolist() == [3, 3]
    with pytest.raises(ValueError, match="unknown retrieval metric 'hits@0'"):
        rank_metrics([1], ["hits@0"])


def test_rank_metrics_match_torchmetrics() -> None:
    g = torch.Generator().manual_seed(0)
    n, m = 60, 250
    scores = distinct_positive_scores(n, m, g)
    positives = torch.randint(0, m, (n,), generator=g)
    ours = rank_metrics(ranks_from_scores(scores, positives), ["mrr", "hits@1", "hits@5", "hits@10", "hits@50"])
    target = F.one_hot(positives, m).bool()
    indexes = torch.arange(n).unsqueeze(1).expand(n, m)
    flat = (scores.flatten().float(), target.flatten(), indexes.flatten())
    assert ours["mrr"] == pytest.approx(float(tm.RetrievalMRR()(*flat[:2], indexes=flat[2])), abs=TOL)
    for k in (1, 5, 10, 50):
        ref = float(tm.RetrievalHitRate(top_k=k)(*flat[:2], indexes=flat[2]))
        assert ours[f"hits@{k}"] == pytest.approx(ref, abs=TOL)
        assert ref == pytest.approx(float(tm.RetrievalRecall(top_k=k)(*flat[:2], indexes=flat[2])), abs=TOL)
    assert 0.0 < ours["mrr"] < 0.2  # random scores: the check is not vacuous


def test_ir_metrics_match_torchmetrics() -> None:
    g = torch.Generator().manual_seed(1)
    n, m = 40, 400
    scores = distinct_positive_scores(n, m, g)
    relevance = torch.zeros(n, m, dtype=torch.float64)
    for q in range(n - 2):  # the last two queries have no relevant document
        docs = torch.randperm(m, generator=g)[: int(torch.randint(1, 8, (1,), generator=g))]
        relevance[q, docs] = torch.randint(1, 4, (len(docs),), generator=g).double()
        scores[q, docs[0]] = 1.5  # one relevant document per query ranks first
    ours = {
        k: v.mean().item()
        for k, v in ir_metrics(scores, relevance, ["ndcg@10", "recall@100", "mrr@10", "ndcg@3"]).items()
    }
    idx = torch.arange(n).unsqueeze(1).expand(n, m).flatten()
    preds, target = scores.flatten().float(), relevance.flatten()
    refs = {
        "ndcg@10": tm.RetrievalNormalizedDCG(top_k=10),
        "ndcg@3": tm.RetrievalNormalizedDCG(top_k=3),
        "recall@100": tm.RetrievalRecall(top_k=100),
        "mrr@10": tm.RetrievalMRR(top_k=10),
    }
    for name, metric in refs.items():
        tgt = target if name.startswith("ndcg") else target > 0
        assert ours[name] == pytest.approx(
            float(metric(preds, tgt.long() if name.startswith("ndcg") else tgt, indexes=idx)), abs=TOL
        ), name
    assert 0.1 < ours["ndcg@10"] < 0.9


def test_ir_metrics_hand_computed() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    relevance = torch.tensor([[0.0, 2.0, 0.0, 1.0]])
    out = ir_metrics(scores, relevance, ["ndcg@4", "recall@2", "mrr@1", "mrr@4"])
    dcg = 2 / np.log2(3) + 1 / np.log2(5)
    idcg = 2 / np.log2(2) + 1 / np.log2(3)
    assert out["ndcg@4"].item() == pytest.approx(dcg / idcg)
    assert out["recall@2"].item() == 0.5 and out["mrr@1"].item() == 0.0 and out["mrr@4"].item() == 0.5


def test_ranks_match_a_plain_comparison_with_ties_infinities_and_nan() -> None:
    g = torch.Generator().manual_seed(4)
    s = torch.randint(0, 6, (200, 50), generator=g).float()  # many ties
    s[torch.rand(s.shape, generator=g) < 0.05] = float("inf")
    s[torch.rand(s.shape, generator=g) < 0.05] = -float("inf")
    s[torch.rand(s.shape, generator=g) < 0.05] = float("nan")
    pos = torch.randint(0, 50, (200,), generator=g)
    ref = []
    for row, p in zip(s.tolist(), pos.tolist(), strict=True):
        clean = [-float("inf") if x != x else x for x in row]
        ref.append(1 + sum(x > clean[p] for x in clean))
    assert ranks_from_scores(s, pos).tolist() == ref
    assert ranks_from_scores(s.double(), pos).tolist() == ref
    assert ranks_from_scores(s.half(), pos).tolist() == ref
    assert ranks_from_scores(s.T.contiguous().T, pos).tolist() == ref  # non-contiguous input
    ints = torch.randint(0, 4, (30, 9), generator=g)
    p9 = torch.randint(0, 9, (30,), generator=g)
    assert ranks_from_scores(ints, p9).tolist() == [1 + int((r > r[p]).sum()) for r, p in zip(ints, p9, strict=True)]


def test_cosine_retrieval_metrics_precomputed(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, 32, generator=g)
    b = a + 0.8 * torch.randn(300, 32, generator=g)
    out = cosine_retrieval_metrics(a, b, names=("text", "molecule"), chunk_size=37)
    monkeypatch.setattr(evaluators, "FULL_MATRIX_ELEMENTS", 0)
    assert cosine_retrieval_metrics(a, b, names=("text", "molecule"), chunk_size=37) == pytest.approx(out)
    s = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    diag = torch.arange(300)
    assert out["text->molecule/mrr"] == pytest.approx(rank_metrics(ranks_from_scores(s, diag))["mrr"])
    assert out["molecule->text/mean_rank"] == pytest.approx(rank_metrics(ranks_from_scores(s.T, diag))["mean_rank"])
    assert out["text->molecule/hits@1"] > 0.2


def test_aligned_retrieval_metrics_on_precomputed_embeddings(model: Any) -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(80, 16, generator=g), torch.randn(80, 16, generator=g)
    b[:40] += 2 * a[:40]
    pooled = aligned_retrieval_metrics(
        model, "coarse", {"sentence": a}, {"sentence": b}, chunk_size=9, candidate_chunk_size=13
    )
    assert pooled == pytest.approx(cosine_retrieval_metrics(a, b, names=("text", "molecule")))
    seq_a = [torch.randn(int(n), 16, generator=g) for n in torch.randint(1, 6, (30,), generator=g)]
    seq_b = [torch.randn(int(n), 16, generator=g) for n in torch.randint(1, 6, (30,), generator=g)]
    out = aligned_retrieval_metrics(
        model, "fine", {"token": seq_a}, {"token": seq_b}, chunk_size=4, candidate_chunk_size=7
    )
    pad = torch.nn.utils.rnn.pad_sequence
    mask = lambda seqs: pad([torch.ones(len(x), dtype=torch.bool) for x in seqs], batch_first=True)
    with torch.no_grad():
        s = model.aligners["fine"](
            Granularity(pad(seq_a, batch_first=True), mask(seq_a)),
            Granularity(pad(seq_b, batch_first=True), mask(seq_b)),
        ).scores
    diag = torch.arange(30)
    assert out["text->molecule/mrr"] == pytest.approx(rank_metrics(ranks_from_scores(s, diag))["mrr"], abs=1e-6)
    assert out["molecule->text/mean_rank"] == pytest.approx(rank_metrics(ranks_from_scores(s.T, diag))["mean_rank"])


# =========================================================================== retrieval evaluator
def test_identical_items_rank_first(toys: Any) -> None:
    shared = {
        "model": {
            "towers": {"text": dict(TOY_TOWER), "molecule": {"shared_with": "text"}},
            "alignments": {"coarse": {"type": "cosine", "between": ["text.sentence", "molecule.sentence"]}},
        }
    }
    m = build_model(plan_model(LocatedConfig(shared)))
    items = [f"w{i} w{i + 1} w{2 * i}" for i in range(40)]
    out = retrieval().evaluate(m, Examples({"text": items, "molecule": items}))
    assert out["text->molecule/hits@1"] == 1.0 and out["molecule->text/mean_rank"] == 1.0
    shuffled = items[1:] + items[:1]  # every positive is now another item: ranks get worse
    out = retrieval().evaluate(m, Examples({"text": items, "molecule": shuffled}))
    assert out["text->molecule/hits@1"] == 0.0 and out["text->molecule/mean_rank"] > 2


@pytest.mark.parametrize("on", ["coarse", "fine", "flipped", {"coarse": 1.0, "fine": 0.5}])
def test_evaluator_equals_ranks_of_the_score_matrix(model: Any, on: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    texts, mols = words(45, 1), words(45, 2)
    data = Examples({"text": texts, "molecule": mols})
    out = retrieval(on=on, chunk_size=7, candidate_chunk_size=10).evaluate(model, data)
    big = retrieval(on=on).evaluate(model, data)
    assert out == pytest.approx(big)  # chunking changes nothing
    monkeypatch.setattr(evaluators, "FULL_MATRIX_ELEMENTS", 0)  # each direction scored on its own
    assert retrieval(on=on, chunk_size=7, candidate_chunk_size=10).evaluate(model, data) == pytest.approx(big)
    assert retrieval(on=on).evaluate(model, data) == pytest.approx(big)
    s = alignment_scores(model, on, "text", texts, "molecule", mols)
    diag = torch.arange(45)
    assert {k[len("text->molecule/") :]: v for k, v in out.items() if k.startswith("text->molecule/")} == pytest.approx(
        rank_metrics(ranks_from_scores(s, diag))
    )
    assert {k[len("molecule->text/") :]: v for k, v in out.items() if k.startswith("molecule->text/")} == pytest.approx(
        rank_metrics(ranks_from_scores(s.T, diag))
    )


def test_scores_go_through_each_aligner(model: Any) -> None:
    texts, mols = words(12, 3), words(9, 4)
    coarse = alignment_scores(model, "coarse", "text", texts, "molecule", mols)
    ref = (
        F.normalize(torch.from_numpy(model.encode(texts, tower="text")), dim=1)
        @ F.normalize(torch.from_numpy(model.encode(mols, tower="molecule")), dim=1).T
    )
    assert torch.allclose(coarse, ref, atol=1e-5)
    with torch.no_grad():
        fine_ref = model.aligners["fine"](
            model.encode_batch("text", texts)["token"], model.encode_batch("molecule", mols)["token"]
        ).scores
    assert torch.allclose(alignment_scores(model, "fine", "text", texts, "molecule", mols), fine_ref, atol=1e-5)
    # the alignment declared molecule -> text is transposed, not recomputed the other way round
    with torch.no_grad():
        flip_ref = model.aligners["flipped"](
            model.encode_batch("molecule", mols)["token"], model.encode_batch("text", texts)["token"]
        ).scores
    assert torch.allclose(alignment_scores(model, "flipped", "text", texts, "molecule", mols), flip_ref.T, atol=1e-5)
    assert not torch.allclose(flip_ref.T, fine_ref, atol=1e-3)  # maxsim is asymmetric: the orientation matters


def test_weighted_sum_equals_sum_of_score_matrices(model: Any) -> None:
    texts, mols = words(30, 5), words(30, 6)
    weighted = alignment_scores(model, {"coarse": 2.0, "fine": 0.5, "flipped": -1.0}, "text", texts, "molecule", mols)
    parts = [alignment_scores(model, n, "text", texts, "molecule", mols) for n in ("coarse", "fine", "flipped")]
    assert torch.allclose(weighted, 2.0 * parts[0] + 0.5 * parts[1] - parts[2], atol=1e-5)


def test_extra_candidates_never_improve_a_rank(model: Any, tmp_path: Path) -> None:
    texts, mols, extra = words(40, 7), words(40, 8), words(200, 9)
    data = Examples({"text": texts, "molecule": mols})
    base = retrieval(on="fine").evaluate(model, data)
    f = tmp_path / "extra.txt"
    f.write_text("\n".join(extra) + "\n")
    more = retrieval(on="fine", extra_candidates={"path": str(f), "tower": "molecule"}).evaluate(model, data)
    assert more["text->molecule/mean_rank"] > base["text->molecule/mean_rank"]
    assert more["text->molecule/mrr"] <= base["text->molecule/mrr"]
    assert {k: v for k, v in more.items() if k.startswith("molecule->")} == pytest.approx(
        {k: v for k, v in base.items() if k.startswith("molecule->")}
    )  # extras are targets only
    s = alignment_scores(model, "fine", "text", texts, "molecule", mols + extra)
    diag = torch.arange(40)
    with_extra, without = ranks_from_scores(s, diag), ranks_from_scores(s[:, :40], diag)
    assert bool((with_extra >= without).all()) and bool((with_extra > without).any())
    assert more["text->molecule/mean_rank"] == pytest.approx(with_extra.double().mean().item())


def test_extra_candidates_from_a_dataset_block(model: Any, tmp_path: Path) -> None:
    texts, mols, extra = words(20, 10), words(20, 11), words(50, 12)
    f = tmp_path / "mols.tsv"
    f.write_text("cid\tsmiles\n" + "".join(f"{i}\t{m}\n" for i, m in enumerate(extra)))
    block = {"type": "pairs", "path": str(f), "fields": {"molecule": "smiles"}}
    data = Examples({"text": texts, "molecule": mols})
    direct = retrieval(on="coarse", extra_candidates=block).evaluate(model, data)
    # as the engine builds it: planned from YAML, the dataset block is a nested component
    cfg = LocatedConfig(
        {"evaluate": {"type": "retrieval", "on": "coarse", "progress": False, "extra_candidates": block}}
    )
    built = build_component(cfg, "evaluator", cfg.data["evaluate"], ("evaluate",))
    assert type(built._extra_dataset).__name__ == "PairsDataset"
    assert built.evaluate(model, data) == pytest.approx(direct)
    s = alignment_scores(model, "coarse", "text", texts, "molecule", mols + extra)
    assert direct["text->molecule/mrr"] == pytest.approx(rank_metrics(ranks_from_scores(s, torch.arange(20)))["mrr"])
    tsv = retrieval(on="coarse", extra_candidates={"path": str(f), "tower": "molecule", "column": "smiles"})
    assert tsv.evaluate(model, data) == pytest.approx(direct)


def test_directions_columns_and_errors(model: Any) -> None:
    data = Examples({"text": words(10, 13), "molecule": words(10, 14)})
    fwd = retrieval(on="coarse", directions="forward", metrics=["mrr", "hits@3"]).evaluate(model, data)
    assert set(fwd) == {"text->molecule/mrr", "text->molecule/hits@3"}
    back = retrieval(on="coarse", directions="backward").evaluate(model, data)
    assert all(k.startswith("molecule->text/") for k in back)
    with pytest.raises(ConfigError, match="name the one to score with 'on:'"):
        retrieval().evaluate(model, data)
    with pytest.raises(ConfigError) as err:
        retrieval(on="corse").evaluate(model, data)
    assert "did you mean 'coarse'" in err.value.render()
    with pytest.raises(InputError, match="data column 'molecule'"):
        retrieval(on="coarse").evaluate(model, Examples({"text": ["a"], "smiles": ["b"]}))
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown retrieval metric 'hit@1'"):
        RetrievalConfig(metrics=["hit@1"])
    with pytest.raises(ValidationError):
        RetrievalConfig(extra_candidates={"paht": "x", "tower": "molecule"})


def test_extras_without_a_matching_side(model: Any, tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("x y\n")
    ev = retrieval(on="coarse", extra_candidates={"path": str(f), "tower": "protein"})
    with pytest.raises(InputError, match="extra_candidates provide protein"):
        ev.evaluate(model, Examples({"text": ["a"], "molecule": ["b"]}))


def test_single_tower_model_with_columns(toys: Any) -> None:
    one = {
        "model": {
            "towers": {"text": dict(TOY_TOWER)},
            "alignments": {"sim": {"type": "cosine", "between": ["text.sentence", "text.sentence"]}},
        }
    }
    m = build_model(plan_model(LocatedConfig(one)))
    items = words(15, 15)
    data = Examples({"query": items, "document": items})
    out = retrieval(columns=("query", "document")).evaluate(m, data)
    assert out["query->document/hits@1"] == 1.0
    with pytest.raises(ConfigError, match="name the two data columns"):
        retrieval().evaluate(m, data)


# =========================================================================== BEIR
def make_beir(root: Path, n_docs: int = 60, n_queries: int = 25) -> Path:
    """A BEIR directory of random word documents; query q0's text is also the text of a document with id q0."""
    rng = random.Random(0)
    docs = list(dict.fromkeys(" ".join(sorted(d.split())) for d in words(3 * n_docs, 16) if len(set(d.split())) > 2))
    docs = docs[:n_docs]  # distinct bags of words
    queries = words(n_queries, 19)
    root.mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": f"d{i}", "title": "", "text": d}) + "\n" for i, d in enumerate(docs))
        f.write(json.dumps({"_id": "q0", "title": "", "text": queries[0]}) + "\n")  # same id as a query
    lines = ["query-id\tcorpus-id\tscore"]
    with open(root / "queries.jsonl", "w") as f:
        for q in range(n_queries):
            f.write(json.dumps({"_id": f"q{q}", "text": queries[q]}) + "\n")
            lines += [f"q{q}\td{r}\t{rng.randint(1, 2)}" for r in rng.sample(range(n_docs), rng.randint(1, 4))]
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_beir_evaluator_matches_torchmetrics(tmp_path: Path, toys: Any) -> None:
    m = toy_model(
        {
            "sim": {"type": "cosine", "between": ["query.sentence", "document.sentence"]},
            "late": {"type": "maxsim", "between": ["query.token", "document.token"]},
        },
        towers=("query", "document"),
    )
    data = BeirDataset(BeirConfig(path=str(make_beir(tmp_path / "b")), split="test"), Runtime()).load()
    ex = data.extras
    late = BeirEvaluator(BeirEvalConfig(on="late", progress=False), Runtime()).evaluate(m, data)
    s = alignment_scores(m, "late", "query", ex["query_texts"], "document", ex["corpus_texts"])
    s[0, ex["corpus_ids"].index("q0")] = -float("inf")
    rel = torch.tensor([[ex["qrels"][q].get(d, 0.0) for d in ex["corpus_ids"]] for q in ex["query_ids"]])
    assert late == pytest.approx({k: v.mean().item() for k, v in ir_metrics(s, rel).items()})
    # maxsim alone ties (a document holding every query word scores exactly the query length);
    # torchmetrics breaks ties otherwise, so it is compared where scores are tie-free
    for on in ("sim", {"sim": 1.0, "late": 0.25}):
        ev = BeirEvaluator(BeirEvalConfig(on=on, progress=False, chunk_size=4, candidate_chunk_size=16), Runtime())
        out = ev.evaluate(m, data)
        s = alignment_scores(m, on, "query", ex["query_texts"], "document", ex["corpus_texts"]).double()
        s[0, ex["corpus_ids"].index("q0")] = -float("inf")  # ignore_identical_ids, as BEIR does by default
        rel = torch.zeros_like(s)
        for i, q in enumerate(ex["query_ids"]):
            for d, r in ex["qrels"][q].items():
                rel[i, ex["corpus_ids"].index(d)] = r
        n, k = s.shape
        idx = torch.arange(n).unsqueeze(1).expand(n, k).flatten()
        assert all(len(set(row.tolist())) == k for row in s)  # tie-free, so the orders agree
        preds = s.exp().flatten().float()  # monotonic and positive (see distinct_positive_scores)
        assert out["ndcg@10"] == pytest.approx(
            float(tm.RetrievalNormalizedDCG(top_k=10)(preds, rel.flatten().long(), indexes=idx)), abs=TOL
        )
        assert out["recall@100"] == pytest.approx(
            float(tm.RetrievalRecall(top_k=100)(preds, rel.flatten() > 0, indexes=idx)), abs=TOL
        )
        assert out["mrr@10"] == pytest.approx(
            float(tm.RetrievalMRR(top_k=10)(preds, rel.flatten() > 0, indexes=idx)), abs=TOL
        )
        assert out["recall@100"] == 1.0 and 0 < out["ndcg@10"] < 1  # 61 documents: everything is in the top 100
        assert out["mrr@10"] > 0


def test_beir_ignore_identical_ids_and_errors(tmp_path: Path, toys: Any) -> None:
    sim = {"sim": {"type": "cosine", "between": ["query.sentence", "document.sentence"]}}
    m = toy_model(sim, towers=("query", "document"), shared=True)
    data = BeirDataset(BeirConfig(path=str(make_beir(tmp_path / "b")), split="test"), Runtime()).load()
    data.extras["qrels"]["q0"]["q0"] = 1.0  # judge the document that shares the query's id (and text) relevant
    kept = BeirEvaluator(BeirEvalConfig(progress=False, ignore_identical_ids=False), Runtime()).evaluate(m, data)
    dropped = BeirEvaluator(BeirEvalConfig(progress=False), Runtime()).evaluate(m, data)
    s = alignment_scores(m, "sim", "query", data.extras["query_texts"], "document", data.extras["corpus_texts"])
    assert int(s[0].argmax()) == data.extras["corpus_ids"].index("q0")  # identical text ranks first when kept
    n = len(data.extras["query_ids"])
    first_rr = ir_metrics(
        s[:1], torch.tensor([[data.extras["qrels"]["q0"].get(d, 0.0) for d in data.extras["corpus_ids"]]]), ["mrr@10"]
    )
    assert first_rr["mrr@10"].item() == 1.0
    assert kept["mrr@10"] > dropped["mrr@10"] and kept["mrr@10"] - dropped["mrr@10"] <= 1 / n + 1e-12
    with pytest.raises(InputError, match="use the beir dataset"):
        BeirEvaluator(BeirEvalConfig(progress=False), Runtime()).evaluate(
            m, Examples({"query": ["a"], "document": ["b"]})
        )
    # the retrieval evaluator ranks against the BEIR corpus when the data carries one
    out = retrieval().evaluate(m, data)
    s = alignment_scores(m, "sim", "query", data.columns["query"], "document", data.extras["corpus_texts"])
    pos = torch.tensor([data.extras["corpus_texts"].index(d) for d in data.columns["document"]])
    assert out["query->document/mrr"] == pytest.approx(rank_metrics(ranks_from_scores(s, pos))["mrr"])


# =========================================================================== STS
def test_sts_matches_scipy_on_cosine(toys: Any) -> None:
    m = toy_model(
        {
            "sim": {"type": "cosine", "between": ["query.sentence", "document.sentence"]},
            "late": {"type": "maxsim", "between": ["query.token", "document.token"]},
        },
        towers=("query", "document"),
    )
    a, b = words(50, 17), words(50, 18)
    gold = [float(x) for x in np.random.default_rng(0).uniform(0, 5, 50)]
    data = Examples({"query": a, "document": b}, targets=gold)
    out = StsEvaluator(StsEvalConfig(on="sim", progress=False), Runtime()).evaluate(m, data)
    cos = F.cosine_similarity(torch.from_numpy(m.encode(a, tower="query")), torch.from_numpy(m.encode(b, tower="document"))).numpy()
    assert out == pytest.approx(
        {"spearman_cosine": spearmanr(cos, gold).statistic, "pearson_cosine": pearsonr(cos, gold).statistic}
    )
    # gold = the model's own cosine: perfect correlation, reported raw (not x100)
    perfect = StsEvaluator(StsEvalConfig(on="sim", progress=False), Runtime()).evaluate(
        m, Examples({"query": a, "document": b}, targets=[float(x) for x in cos])
    )
    assert perfect["spearman_cosine"] == pytest.approx(1.0) and perfect["pearson_cosine"] == pytest.approx(1.0)
    late = StsEvaluator(
        StsEvalConfig(on="late", similarity="alignment", progress=False, batch_size=8), Runtime()
    ).evaluate(m, data)
    with torch.no_grad():
        pair = [
            m.aligners["late"](m.encode_batch("query", [x])["token"], m.encode_batch("document", [y])["token"]).scores.item()
            for x, y in zip(a, b, strict=True)
        ]
    ref = {"spearman_late": spearmanr(pair, gold).statistic, "pearson_late": pearsonr(pair, gold).statistic}
    assert late == pytest.approx(ref, rel=1e-4)  # batched vs one-pair float32 sums differ in the last bits
    between = StsEvaluator(StsEvalConfig(between=("query.sentence", "document.sentence"), progress=False), Runtime())
    assert between.evaluate(m, data) == pytest.approx(out)
    with pytest.raises(ConfigError, match="needs pooled granularities"):
        StsEvaluator(StsEvalConfig(on="late", progress=False), Runtime()).evaluate(m, data)
    with pytest.raises(InputError, match="needs gold scores"):
        StsEvaluator(StsEvalConfig(on="sim", progress=False), Runtime()).evaluate(
            m, Examples({"query": a, "document": b})
        )


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("REPMIX_SLOW_TESTS", "") in ("", "0"),
    reason="slow (loads MiniLM twice, ~20 s on 2 CPUs): set REPMIX_SLOW_TESTS=1 to run",
)
def test_sts_matches_sentence_transformers_on_minilm(shared_data_dir: Path, minilm_st: Any) -> None:
    """Faithfulness: the sts evaluator on the packaged all-MiniLM-L6-v2 equals sentence-transformers' own
    EmbeddingSimilarityEvaluator on the first 32 STS-B dev pairs (on all 1,500 they agree too:
    spearman 0.8671631, pearson 0.8696195, see docs/plugins/std-data-and-evaluation.md)."""
    from repmix_std.datasets import StsConfig, StsDataset
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    stsb = shared_data_dir / "stsb"
    if not (stsb / "dev.tsv").is_file():
        pytest.skip(f"STS-B not found under {stsb} (set REPMIX_SHARED_DATA)")
    data = StsDataset(StsConfig(path=str(stsb), limit=32), Runtime()).load("dev")
    tower = {
        "tokenizer": {"type": "hf-tokenizer", "model": "all-MiniLM-L6-v2", "max_length": minilm_st.max_seq_length},
        "encoder": {"type": "hf-transformer", "model": "all-MiniLM-L6-v2"},
        "poolers": {"sentence": {"type": "mean"}},
    }
    cfg = {
        "model": {
            "towers": {"query": tower, "document": {"shared_with": "query"}},
            "alignments": {"sim": {"type": "cosine", "between": ["query.sentence", "document.sentence"]}},
        }
    }
    ours = StsEvaluator(StsEvalConfig(progress=False), Runtime()).evaluate(
        build_model(plan_model(LocatedConfig(cfg))), data
    )
    ref = EmbeddingSimilarityEvaluator(data.columns["query"], data.columns["document"], data.targets)(minilm_st)
    assert ours == pytest.approx(
        {"spearman_cosine": ref["spearman_cosine"], "pearson_cosine": ref["pearson_cosine"]}, abs=1e-5
    )
