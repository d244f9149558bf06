"""Faithfulness of the xtr aligner.

References (PyLate 1.6 pins sentence-transformers 5.3, so it is not installed here; its
formulas are re-derived by hand, not its code):

* inference: the official notebook's scoring (top-k' token retrieval, first = highest
  score per (document, query token), missing entries imputed with the k'-th score,
  **mean** over query tokens); PyLate ``rank.score_xtr`` returns the **sum** (the same
  ranking): ``aggregate: sum``. Checked on a hand-computed example and against an
  explicit-loop implementation on random data (tolerance 1e-6, float64);
* training: Lee et al. Eq. 2, ``f = (1/Z) Σ_a max_b A_ab <q_a, d_b>`` with A the in-batch
  top-k_train indicator, on a hand-computed example and against explicit loops;
* reduction: with k' covering every token, XTR = ColBERT MaxSim / |Q|; compared with
  std's ``maxsim`` built from YAML on a tiny BERT's token states (tolerance 1e-5).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import Granularity, Runtime
from repmix_xtr.aligner import EMPTY_DOCUMENT_SCORE, XTRAligner, faiss_available

INDEXES = ["exact", "faiss"] if faiss_available() else ["exact"]


def aligner(train: bool = False, **cfg: object) -> XTRAligner:
    a = XTRAligner(XTRAligner.Config(**cfg), Runtime())
    return a.train(train)


def hand_example() -> tuple[Granularity, Granularity]:
    """Q = {q1=(1,0), q2=(0,1)}; D1 = {(.9,.1), (.2,.3)}, D2 = {(.5,.8)}, D3 = {(-.5,.2)} (padded)."""
    q = Granularity(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64))
    d = torch.tensor(
        [[[0.9, 0.1], [0.2, 0.3]], [[0.5, 0.8], [0.0, 0.0]], [[-0.5, 0.2], [0.0, 0.0]]], dtype=torch.float64
    )
    mask = torch.tensor([[True, True], [True, False], [True, False]])
    return q, Granularity(d, mask)


@pytest.mark.parametrize("index", INDEXES)
def test_inference_hand_computed(index: str) -> None:
    # k'=2. q1: sims D1 {.9,.2}, D2 {.5}, D3 {-.5} -> retrieved .9 (D1), .5 (D2); m1 = .5
    #       q2: sims D1 {.1,.3}, D2 {.8}, D3 {.2}  -> retrieved .8 (D2), .3 (D1); m2 = .3
    # D1 = (.9 + .3)/2 = .6, D2 = (.5 + .8)/2 = .65, D3 = (.5 + .3)/2 = .4 (both imputed)
    q, d = hand_example()
    if index == "faiss":
        q, d = Granularity(q.hidden.float()), Granularity(d.hidden.float(), d.mask)
    got = aligner(k=2, normalize=False, index=index)(q, d)
    torch.testing.assert_close(got.scores.double(), torch.tensor([[0.6, 0.65, 0.4]], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    summed = aligner(k=2, normalize=False, aggregate="sum", index=index)(q, d).scores.double()
    torch.testing.assert_close(summed, torch.tensor([[1.2, 1.3, 0.8]], dtype=torch.float64), atol=1e-6, rtol=0)
    assert got.detail["retrieved_tokens"] == 4 and got.detail["scored_pairs"] == 4


def test_training_hand_computed() -> None:
    # k_train=2 over all 4 in-batch tokens. q1 retrieves D1t1 (.9), D2t1 (.5); q2 retrieves D2t1 (.8), D1t2 (.3)
    # D1: q1 max(.9, 0*.2) = .9, q2 max(0*.1, .3) = .3, Z = 2 -> .6; D2: (.5 + .8)/2 = .65; D3: nothing, Z = 0 -> 0
    q, d = hand_example()
    got = aligner(train=True, k_train=2, normalize=False)(q, d).scores
    torch.testing.assert_close(got, torch.tensor([[0.6, 0.65, 0.0]], dtype=torch.float64), atol=1e-12, rtol=0)


def loop_inference(q: torch.Tensor, qm: torch.Tensor, d: torch.Tensor, dm: torch.Tensor, k: int) -> torch.Tensor:
    """The official scoring, one query token at a time."""
    tokens = [(j, d[j, t]) for j in range(d.shape[0]) for t in range(d.shape[1]) if dm[j, t]]
    out = torch.zeros(q.shape[0], d.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        real = [q[i, a] for a in range(q.shape[1]) if qm[i, a]]
        for qa in real:
            ranked = sorted(((float(qa @ vec), j) for j, vec in tokens), reverse=True)[:k]
            lowest = ranked[-1][0]
            for j in range(d.shape[0]):
                hits = [s for s, jj in ranked if jj == j]
                out[i, j] += (hits[0] if hits else lowest) / len(real)
    return out


def loop_train(q: torch.Tensor, qm: torch.Tensor, d: torch.Tensor, dm: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 2 of the paper, one pair at a time."""
    out = torch.zeros(q.shape[0], d.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        for j in range(d.shape[0]):
            total, z = 0.0, 0
            for a in range(q.shape[1]):
                if not qm[i, a]:
                    continue
                sims = sorted(
                    ((float(q[i, a] @ d[jj, t]), jj, t) for jj in range(d.shape[0]) for t in range(d.shape[1])
                     if dm[jj, t]), reverse=True)[:k]
                chosen = {(jj, t) for _, jj, t in sims}
                products = [float(q[i, a] @ d[j, t]) * ((j, t) in chosen) for t in range(d.shape[1]) if dm[j, t]]
                if any((j, t) in chosen for t in range(d.shape[1])):
                    total += max(products)
                    z += 1
            out[i, j] = total / max(z, 1)
    return out


def random_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(3, 4, 8, generator=g, dtype=torch.float64), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(5, 6, 8, generator=g, dtype=torch.float64), dim=-1)
    qm = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    dm = torch.arange(6).unsqueeze(0) < torch.tensor([6, 1, 3, 4, 2]).unsqueeze(1)
    return q, qm, d, dm


@pytest.mark.parametrize("k", [1, 3, 7, 16])
def test_inference_equals_loops(k: int) -> None:
    q, qm, d, dm = random_batch(k)
    for index in INDEXES:
        dtype = torch.float32 if index == "faiss" else torch.float64
        got = aligner(k=k, index=index)(Granularity(q.to(dtype), qm), Granularity(d.to(dtype), dm)).scores
        torch.testing.assert_close(got.double(), loop_inference(q, qm, d, dm, k), atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_training_equals_loops(k: int) -> None:
    q, qm, d, dm = random_batch(100 + k)
    got = aligner(train=True, k_train=k)(Granularity(q, qm), Granularity(d, dm)).scores
    torch.testing.assert_close(got, loop_train(q, qm, d, dm, k), atol=1e-10, rtol=0)


def test_reduces_to_maxsim_over_query_length_from_yaml(tiny_bert_dir: str, tmp_path: Path) -> None:
    from repmix.sdk import (
        Examples,
        LocatedConfig,
        build_model,
        load_component_class,
        parse_yaml,
        plan_model,
    )

    text = f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: {tiny_bert_dir}, max_length: 32}}
      encoder: {{type: std.hf-transformer, model: {tiny_bert_dir}}}
    document: {{shared_with: query}}
  alignments:
    colbert: {{type: std.maxsim, between: [query.token, document.token]}}
    xtr: {{type: xtr.xtr, between: [query.token, document.token], k: 100000, k_train: null}}
"""
    data, lines = parse_yaml(text, "x.yaml")
    model = build_model(plan_model(LocatedConfig(data, lines, "x.yaml"))).eval()
    queries = ["what is the answer", "a molecule", "query about data and model test"]
    docs = ["the answer is a passage", "molecule", "word data", "the question of the model is a test"]
    with torch.no_grad():
        q = model.encode_batch("query", queries)["token"]
        d = model.encode_batch("document", docs)["token"]
        colbert = model.aligners["colbert"](q, d).scores
        xtr = model.aligners["xtr"](q, d).scores
        length = q.full_mask().sum(dim=1, keepdim=True)
        torch.testing.assert_close(xtr, colbert / length, atol=1e-5, rtol=1e-5)
        # through the retrieval evaluator (one query per aligner call, the corpus in one candidate chunk):
        # the index is built once and reused, and the ranks are those of the aligner's own scores
        extra = tmp_path / "extra-documents.txt"
        extra.write_text(docs[3] + "\n", encoding="utf-8")
        retrieval = load_component_class("evaluator", "retrieval")
        evaluator = retrieval(
            retrieval.Config(
                on="xtr", directions="forward", metrics=["mrr", "mean_rank"], chunk_size=1,
                candidate_chunk_size=len(docs), progress=False,
                extra_candidates={"path": str(extra), "tower": "document"},
            ),
            Runtime(),
        )
        metrics = evaluator.evaluate(model, Examples({"query": queries, "document": docs[:3]}))
        ranks = 1 + (xtr > xtr.diagonal().unsqueeze(1)).sum(dim=1).double()
        assert metrics["query->document/mrr"] == pytest.approx(float((1 / ranks).mean()))
        assert metrics["query->document/mean_rank"] == pytest.approx(float(ranks.mean()))
        model.aligners["xtr"].train()  # k_train: null and every similarity > 0 -> the training scores agree too
        shifted_q = Granularity(q.hidden.abs(), q.mask)
        shifted_d = Granularity(d.hidden.abs(), d.mask)
        torch.testing.assert_close(
            model.aligners["xtr"](shifted_q, shifted_d).scores,
            model.aligners["colbert"](shifted_q, shifted_d).scores / length, atol=1e-5, rtol=1e-5,
        )


def test_k_larger_than_corpus_is_clamped_and_reported() -> None:
    q, qm, d, dm = random_batch(3)
    out = aligner(k=10**6)(Granularity(q, qm), Granularity(d, dm))
    assert out.detail["k"] == int(dm.sum())
    torch.testing.assert_close(out.scores, loop_inference(q, qm, d, dm, int(dm.sum())), atol=1e-10, rtol=0)


@pytest.mark.parametrize("train", [False, True])
def test_empty_documents(train: bool) -> None:
    q, qm, d, dm = random_batch(4)
    dm[1] = False
    out = aligner(train=train, k=5, k_train=5)(Granularity(q, qm), Granularity(d, dm)).scores
    assert torch.all(out[:, 1] == EMPTY_DOCUMENT_SCORE)
    assert torch.all(out[:, [0, 2, 3, 4]] > EMPTY_DOCUMENT_SCORE)
    nothing = aligner(train=train)(Granularity(q, qm), Granularity(d, torch.zeros_like(dm))).scores
    assert torch.all(nothing == EMPTY_DOCUMENT_SCORE)


def test_index_is_reused_for_the_same_corpus_and_rebuilt_after_a_change() -> None:
    q, qm, d, dm = random_batch(5)
    xtr = aligner(k=4)
    corpus = Granularity(d.clone(), dm)
    first = xtr(Granularity(q, qm), corpus).scores
    cached = xtr._cache[-1]
    xtr(Granularity(q[:1], qm[:1]), corpus)
    assert xtr._cache[-1] is cached
    corpus.hidden.mul_(-1)  # in place: a new version of the same tensor
    flipped = xtr(Granularity(q, qm), corpus).scores
    assert xtr._cache[-1] is not cached
    torch.testing.assert_close(flipped, loop_inference(q, qm, -d, dm, 4), atol=1e-10, rtol=0)
    assert not torch.equal(first, flipped)


def test_faiss_needs_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from repmix.sdk import ConfigError

    real_import = builtins.__import__

    def no_faiss(name: str, *args: object, **kwargs: object) -> object:
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ConfigError, match="repmix-xtr\\[faiss\\]"):
        aligner(index="faiss")
