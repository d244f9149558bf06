"""``m2-bert.bm25-pairs``: labelled (query, document) pairs with BM25 negatives, for the single-sample loss.

M2-BERT's retrieval fine-tuning (``bert/src/embeddings/training_functions.py``) trains on
``(q, d⁺, 1.0)`` for every relevant document of a query and ``(q, d⁻, 0.0)`` for "strong"
negatives, the top BM25 results that are not relevant. This dataset builds exactly those rows
from a BEIR-style dataset nested in ``beir:`` (std's ``beir``, which also selects the queries:
``holdout`` / ``limit``), so training and evaluation can share one query split:

* for each query of the split, in the nested dataset's order: one row per relevant document
  (label 1), then ``negatives`` rows (label 0) — the highest BM25 documents of the whole corpus
  that are not judged relevant, after skipping the first ``skip`` of them (BM25 ranks ties by
  corpus order);
* ``Examples.columns`` = ``{query tower: query texts, document tower: document texts}``,
  ``targets`` = the labels, ``ids`` = ``"query-id<TAB>doc-id"``, ``extras`` = the nested
  dataset's extras (corpus, queries, qrels) plus ``labels``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime

from .bm25 import BM25
from .loss import CITATION

_NEEDED = ("corpus_ids", "corpus_texts", "query_ids", "query_texts", "qrels", "query_tower", "document_tower")


class Bm25PairsConfig(ComponentConfig):
    """Options of ``m2-bert.bm25-pairs``."""

    beir: dict[str, Any] = Field(
        description="a dataset block whose extras hold a corpus, queries and qrels, e.g. "
        "{type: std.beir, path: ../shared/data/scifact, holdout: 300}"
    )
    split: str | None = Field(None, description="split asked of the nested dataset by default (null: its own)")
    negatives: int = Field(4, ge=0, description="BM25 negatives (label 0) per query")
    skip: int = Field(0, ge=0, description="leave out the first `skip` non-relevant BM25 results (too-close negatives)")
    k1: float = Field(1.2, ge=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation")


class Bm25PairsDataset(Dataset):
    """Positives (label 1) and BM25 negatives (label 0) of every query of a nested BEIR dataset."""

    Config: ClassVar[type[ComponentConfig]] = Bm25PairsConfig
    citation: ClassVar[str] = CITATION
    config: Bm25PairsConfig

    @classmethod
    def nested_components(cls, config: ComponentConfig) -> dict[str, tuple[str, dict[str, Any]]]:
        assert isinstance(config, Bm25PairsConfig)
        return {"beir": ("dataset", dict(config.beir))}

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        inner = runtime.nested.get("beir")
        if inner is None:  # built directly, not through a config
            from repmix.sdk import LocatedConfig, build_component

            block = dict(self.config.beir)
            inner = build_component(LocatedConfig({"beir": block}), "dataset", block, ("beir",))
        self.inner = inner
        self._bm25: tuple[int, BM25] | None = None

    def _index(self, corpus_texts: list[str]) -> BM25:
        key = id(corpus_texts)
        if self._bm25 is None or self._bm25[0] != key:
            self._bm25 = (key, BM25(corpus_texts, k1=self.config.k1, b=self.config.b))
        return self._bm25[1]

    def load(self, split: str | None = None) -> Examples:
        """The labelled pairs of ``split`` (default: ``split:``, else the nested dataset's own)."""
        c = self.config
        data = self.inner.load(split or c.split)
        missing = [k for k in _NEEDED if k not in data.extras]
        if missing:
            raise InputError(
                f"bm25-pairs: the nested dataset provides no {', '.join(missing)} in its extras",
                hint="nest a BEIR-style dataset: beir: {type: std.beir, path: ...}",
            )
        ex = data.extras
        corpus_ids: list[str] = list(ex["corpus_ids"])
        corpus_texts: list[str] = ex["corpus_texts"]
        bm25 = self._index(corpus_texts)
        qrels: dict[str, dict[str, float]] = ex["qrels"]
        queries, documents, labels, ids = [], [], [], []
        index = {d: i for i, d in enumerate(corpus_ids)}
        for qid, text in zip(ex["query_ids"], ex["query_texts"], strict=True):
            judged = qrels.get(qid, {})
            relevant = [d for d, score in judged.items() if score > 0 and d in index]
            rows = [(d, 1.0) for d in relevant]
            if c.negatives:
                wanted = c.skip + c.negatives
                ranked = (corpus_ids[i] for i in bm25.top(text, wanted + len(judged) + 1))
                negatives = [d for d in ranked if judged.get(d, 0) <= 0 and d != qid][c.skip : wanted]
                rows += [(d, 0.0) for d in negatives]
            for did, label in rows:
                queries.append(text)
                documents.append(corpus_texts[index[did]])
                labels.append(label)
                ids.append(f"{qid}\t{did}")
        if not queries:
            raise InputError("bm25-pairs: the nested dataset's split has no query with a relevant document")
        positives = int(sum(labels))
        notes = [
            *data.notes,
            (
                f"bm25-pairs: {len(ex['query_ids'])} queries -> {positives} positive and "
                f"{len(labels) - positives} BM25-negative pairs"
            ),
        ]
        columns = {ex["query_tower"]: queries, ex["document_tower"]: documents}
        extras = {**ex, "labels": labels}
        return Examples(columns, labels, ids, extras, skipped=data.skipped, notes=notes)
