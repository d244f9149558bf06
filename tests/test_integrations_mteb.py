"""repmix.integrations.mteb: a repmix model is an MTEB encoder, checked offline on MTEB's own mock tasks.

The mock tasks (``mteb.mocks``) hold their data in memory: nothing is
downloaded. ``mteb.mock_run`` runs every text mock task, as MTEB's own
``mteb mock-run`` command does to sanity-check a model implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

mteb = pytest.importorskip("mteb", reason="needs mteb: pip install 'repmix[integrations]'")
pytest.importorskip("repmix_std", reason="the adapted models are made of repmix-std components")

from datasets import Dataset
from mteb.mocks import MockClassificationTask, MockRetrievalTask, MockSTSTask
from mteb.results.task_result import TaskError, TaskResult
from mteb.types import PromptType
from torch.utils.data import DataLoader

import repmix
from repmix.core.errors import InputError
from repmix.integrations.mteb import MTEBEncoder, load_mteb_encoder

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["the man is riding a horse", "a dog", "hello world, this is a longer sentence about the city park", "b"]


def two_tower_yaml(bert: str) -> str:
    """Queries: mean + L2; documents: CLS (own weights); scored with std dot."""
    return f"""
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {bert}, max_length: 64}}
      encoder:   {{type: hf-transformer, model: {bert}}}
      poolers:   {{sentence: {{type: mean, normalize: true}}}}
    document:
      tokenizer: {{type: hf-tokenizer, model: {bert}, max_length: 64}}
      encoder:   {{type: hf-transformer, model: {bert}}}
      poolers:   {{tokens: {{type: max}}, sentence: {{type: cls}}}}
    text: {{shared_with: query}}
  alignments:
    sim: {{type: dot, between: [query.sentence, document.sentence]}}
"""


@pytest.fixture(scope="module")
def two_tower(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny two-tower model whose towers encode differently."""
    path = tmp_path_factory.mktemp("mteb") / "two-tower.yaml"
    path.write_text(two_tower_yaml(tiny_bert_dir), encoding="utf-8")
    return repmix.load(path)


def loader(texts: list[str], batch_size: int = 3) -> DataLoader:
    """What MTEB hands ``encode`` (as its own text loader builds it): a Dataset with a ``text`` column, batched."""
    return DataLoader(Dataset.from_dict({"text": texts}), batch_size=batch_size)


def test_satisfies_the_encoder_protocol(two_tower: Any) -> None:
    encoder = MTEBEncoder(two_tower)
    assert isinstance(encoder, mteb.EncoderProtocol)
    meta = encoder.mteb_model_meta
    assert meta.name == "repmix/model" and meta.modalities == ["text"]
    assert meta.n_parameters == sum(p.numel() for p in two_tower.parameters())


def test_queries_documents_and_the_rest_go_to_their_towers(two_tower: Any) -> None:
    encoder = MTEBEncoder(two_tower, tower="text", query_tower="query", document_tower="document")
    meta = MockSTSTask().metadata
    expected = {
        PromptType.query: two_tower.encode(TEXTS, tower="query"),
        PromptType.document: two_tower.encode(TEXTS, tower="document"),
        None: two_tower.encode(TEXTS, tower="text"),
    }
    assert np.abs(expected[PromptType.query] - expected[PromptType.document]).max() > 1e-3  # towers differ
    for prompt_type, want in expected.items():
        got = encoder.encode(
            loader(TEXTS), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt_type
        )
        assert got.dtype == np.float32 and got.shape == want.shape and got.shape[0] == len(TEXTS)
        np.testing.assert_array_equal(got, want)


def test_towers_default_to_the_models_default_tower(two_tower: Any) -> None:
    encoder = MTEBEncoder(two_tower)
    assert encoder.tower == encoder.query_tower == encoder.document_tower == "query"
    only_docs = MTEBEncoder(two_tower, document_tower="document")
    assert (only_docs.tower, only_docs.query_tower, only_docs.document_tower) == ("query", "query", "document")


def test_evaluate_retrieval_routes_mteb_queries_and_corpus(two_tower: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ``mteb.evaluate`` of the mock retrieval task: queries reach the query tower, the corpus the other."""
    calls: list[tuple[str, list[str]]] = []
    original = two_tower.encode

    def spy(texts: list[str], tower: str | None = None, **kwargs: Any) -> np.ndarray:
        calls.append((str(tower), list(texts)))
        return original(texts, tower=tower, **kwargs)

    monkeypatch.setattr(two_tower, "encode", spy)
    encoder = MTEBEncoder(two_tower, query_tower="query", document_tower="document")
    result = mteb.evaluate(encoder, MockRetrievalTask(), cache=None, show_progress_bar=False)
    assert not result.exceptions
    (task_result,) = result.task_results
    assert 0.0 <= task_result.get_score() <= 1.0
    by_tower: dict[str, set[str]] = {}
    for tower, texts in calls:
        by_tower.setdefault(tower, set()).update(texts)
    assert by_tower["query"] == {"This is a test sentence", "This is another test sentence"}
    assert by_tower["document"] and all("positive sentence" in t for t in by_tower["document"])
    assert set(by_tower) == {"query", "document"}


def test_similarity_follows_the_models_alignment(two_tower: Any) -> None:
    a = np.array([[1.0, 2.0], [0.0, 1.0]], dtype=np.float32)
    b = np.array([[3.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    dot = MTEBEncoder(two_tower, query_tower="query", document_tower="document")
    assert dot.similarity_name == "dot" and dot.mteb_model_meta.similarity_fn_name.value == "dot"
    np.testing.assert_allclose(np.asarray(dot.similarity(a, b)), a @ b.T, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(dot.similarity_pairwise(a, b)), (a * b).sum(1), rtol=1e-6)
    cos = MTEBEncoder(two_tower, query_tower="query", document_tower="document", similarity="cosine")
    unit_a = a / np.linalg.norm(a, axis=1, keepdims=True)
    unit_b = b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(cos.similarity(a, b)), unit_a @ unit_b.T, rtol=1e-6)
    # the dot alignment reads query.sentence and document.sentence: with the documents'
    # "tokens" (max) granularity it is not what the encoder writes, so the default is cosine
    assert (
        MTEBEncoder(two_tower, document_tower="document", granularity={"document": "tokens"}).similarity_name
        == "cosine"
    )


def test_prompts_prefix_inputs_by_prompt_type(two_tower: Any) -> None:
    encoder = MTEBEncoder(two_tower, prompts={"query": "query: ", "document": "passage: "})
    meta = MockRetrievalTask().metadata
    got = encoder.encode(
        loader(TEXTS), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=PromptType.query
    )
    np.testing.assert_array_equal(got, two_tower.encode([f"query: {t}" for t in TEXTS], tower="query"))
    plain = encoder.encode(loader(TEXTS), task_metadata=MockSTSTask().metadata, hf_split="test", hf_subset="default")
    np.testing.assert_array_equal(plain, two_tower.encode(TEXTS, tower="query"))
    assert encoder.mteb_model_meta.use_instructions is True


def test_bad_options_are_clear_input_errors(two_tower: Any) -> None:
    with pytest.raises(InputError, match="no tower 'docs'"):
        MTEBEncoder(two_tower, document_tower="docs")
    with pytest.raises(InputError, match="no pooled granularity 'token'"):
        MTEBEncoder(two_tower, granularity="token")
    with pytest.raises(InputError, match="no pooled granularity 'tokens'"):
        MTEBEncoder(two_tower, granularity="tokens")  # the query tower has none
    with pytest.raises(InputError, match="names tower 'document', which the adapter does not use"):
        MTEBEncoder(two_tower, granularity={"document": "tokens"})
    with pytest.raises(InputError, match="similarity must be one of"):
        MTEBEncoder(two_tower, similarity="euclidean")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="wraps a repmix model"):
        MTEBEncoder("not a model")  # type: ignore[arg-type]


def test_load_mteb_encoder_from_a_config(tiny_bert_dir: str, tmp_path: Path) -> None:
    path = tmp_path / "two-tower.yaml"
    path.write_text(two_tower_yaml(tiny_bert_dir), encoding="utf-8")
    encoder = load_mteb_encoder(path, ["model.towers.query.tokenizer.max_length=16"], document_tower="document")
    assert encoder.mteb_model_meta.name == "repmix/two-tower"
    assert encoder.model.tower("query").tokenizer.max_length == 16
    assert encoder.document_tower == "document" and not encoder.model.training


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One compute thread for torch and scikit-learn: the mock tasks are tiny, threads only contend."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_mteb_mock_run_passes_every_text_task(two_tower: Any, one_thread: None) -> None:
    """MTEB's own model check: every compatible mock task (text: ~28 tasks of every task type) runs."""
    encoder = MTEBEncoder(two_tower, query_tower="query", document_tower="document")
    results = mteb.mock_run(encoder)
    ran = {name: status for name, status in results.items() if status is not None}
    failures = {name: status.exception[-500:] for name, status in ran.items() if isinstance(status, TaskError)}
    assert not failures, failures
    assert results.all_passed
    assert len(ran) >= 20 and all(isinstance(s, TaskResult) for s in ran.values())
    assert {"MockRetrievalTask", "MockSTSTask", "MockClassificationTask", "MockClusteringTask"} <= set(ran)


def test_minilm_scores_as_mtebs_own_sentence_transformers_wrapper(minilm_dir: Path) -> None:
    """examples/minilm.yaml through the adapter = the packaged MiniLM through MTEB's sentence-transformers wrapper."""
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers (the reference)")
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    ours = MTEBEncoder(repmix.load(ROOT / "examples" / "minilm.yaml"), query_tower="query", document_tower="document")
    assert ours.similarity_name == "cosine"
    reference = SentenceTransformerEncoderWrapper(st.SentenceTransformer(str(minilm_dir), device="cpu"))
    meta = MockSTSTask().metadata
    texts = [*TEXTS, "A man is playing a guitar.", "Three children are running in the park on a sunny day."]
    for prompt_type in (PromptType.query, PromptType.document, None):
        a = ours.encode(
            loader(texts), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt_type
        )
        b = reference.encode(
            loader(texts), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt_type
        )
        assert np.abs(a - np.asarray(b)).max() <= 1e-5
    for task in (MockRetrievalTask(), MockClassificationTask()):
        mine = mteb.evaluate(ours, task, cache=None, show_progress_bar=False).task_results[0]
        theirs = mteb.evaluate(reference, task, cache=None, show_progress_bar=False).task_results[0]
        assert mine.get_score() == pytest.approx(theirs.get_score(), abs=1e-6), task.metadata.name
