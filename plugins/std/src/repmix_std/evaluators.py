"""Evaluators of repmix-std: ``retrieval`` (both directions), ``sts`` and ``beir``.

Every evaluator scores through the model's own alignments: items are embedded
once per side (all granularities an alignment reads, in one pass over sorted
batches), then queries × candidates are scored in chunks by the alignment's
aligner module (``model.aligners[name](a_chunk, b_chunk).scores``), so any
aligner works (cosine, dot, maxsim, optimal transport). Several alignments can
be combined as a weighted sum of their scores (``on: {coarse: 1, fine: 0.5}``).

The metric functions take precomputed scores or embeddings
(:func:`ranks_from_scores`, :func:`rank_metrics`, :func:`cosine_retrieval_metrics`,
:func:`aligned_retrieval_metrics`,
:func:`ir_metrics`), so they can be tested and timed on their own.

Ranks are 1-based (1 = best). Ties: the rank of the positive is 1 + the number
of candidates with a **strictly greater** score (an optimistic rank: a candidate
scoring exactly as the positive, e.g. a duplicate item, does not push it down).
NaN scores count as -inf.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Dataset,
    Evaluator,
    Examples,
    Granularity,
    InputError,
    Runtime,
    did_you_mean,
)
from torch import Tensor

if TYPE_CHECKING:
    from repmix.sdk import AssembledModel

__all__ = [
    "DEFAULT_IR_METRICS",
    "DEFAULT_RANK_METRICS",
    "BeirEvalConfig",
    "BeirEvaluator",
    "ExtraCandidatesFile",
    "RetrievalConfig",
    "RetrievalEvaluator",
    "StsEvalConfig",
    "StsEvaluator",
    "aligned_retrieval_metrics",
    "alignment_scores",
    "cosine_retrieval_metrics",
    "ir_metrics",
    "rank_metrics",
    "ranks_from_scores",
]

#: Largest score matrix (entries; 256 MiB as float32) computed whole so that both directions share it.
FULL_MATRIX_ELEMENTS = 2**26
DEFAULT_RANK_METRICS: tuple[str, ...] = ("mrr", "hits@1", "hits@5", "hits@10", "mean_rank", "median_rank")
DEFAULT_IR_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10")
_RANK_RE = re.compile(r"^(mrr|mean_rank|median_rank|hits@([1-9][0-9]*))$")
_IR_RE = re.compile(r"^(ndcg|recall|mrr)@([1-9][0-9]*)$")


# =========================================================================== metric functions
def ranks_from_scores(scores: Tensor, positives: Tensor) -> Tensor:
    """1-based rank of each row's positive candidate in a score matrix.

    ``scores`` is [n, m] (higher = better), ``positives`` [n] holds the column
    of each row's positive. rank = 1 + #{candidates with a strictly greater
    score}; NaN scores count as -inf. Returns a [n] int64 tensor.
    """
    if scores.dim() != 2 or positives.dim() != 1 or positives.shape[0] != scores.shape[0]:
        raise ValueError(
            f"expected scores [n, m] and positives [n], got {tuple(scores.shape)} and {tuple(positives.shape)}"
        )
    pos = scores.gather(1, positives.to(scores.device, torch.long).view(-1, 1))
    if scores.is_floating_point():
        # (s - pos) > 0  <=>  s > pos (IEEE subtraction of distinct floats is never 0); NaN - x is NaN and
        # compares False, so NaN candidates count as -inf, and inf - inf (a tie) is NaN too. Summing the
        # 0/1 floats is about twice as fast on CPU as summing a bool tensor; float32 counts are exact below 2**24.
        acc = torch.float32 if scores.shape[1] < 2**24 else torch.float64
        greater = (scores - pos).gt_(0).sum(dim=1, dtype=acc).long()
        nan_pos = torch.isnan(pos.view(-1))
        if bool(nan_pos.any()):  # a NaN positive counts as -inf: every real score beats it
            greater[nan_pos] = (scores[nan_pos] > -math.inf).sum(dim=1)
    else:
        greater = (scores > pos).sum(dim=1)
    return greater + 1


def _check_rank_metric(m: str) -> str:
    if not _RANK_RE.match(m):
        hint = did_you_mean(m, [*DEFAULT_RANK_METRICS, "hits@50", "hits@100"])
        raise ValueError(
            f"unknown retrieval metric {m!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + "; known: mrr, hits@K (K >= 1), mean_rank, median_rank"
        )
    return m


def _check_rank_metrics(metrics: Iterable[str]) -> list[str]:
    return [_check_rank_metric(m) for m in metrics]


def rank_metrics(ranks: Tensor | Sequence[int], metrics: Iterable[str] = DEFAULT_RANK_METRICS) -> dict[str, float]:
    """Metrics of 1-based ranks: ``mrr`` (mean of 1/rank), ``hits@K`` (fraction with rank <= K),
    ``mean_rank`` and ``median_rank`` (``numpy.median``: the mean of the two middle ranks for an even count)."""
    r = torch.as_tensor(ranks).detach().to("cpu", torch.float64)
    if r.numel() == 0:
        raise InputError("cannot compute retrieval metrics over zero queries")
    out: dict[str, float] = {}
    for m in _check_rank_metrics(metrics):
        if m == "mrr":
            out[m] = float((1.0 / r).mean())
        elif m == "mean_rank":
            out[m] = float(r.mean())
        elif m == "median_rank":
            out[m] = float(np.median(r.numpy()))
        else:
            out[m] = float((r <= int(m.split("@")[1])).double().mean())
    return out


def cosine_retrieval_metrics(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    metrics: Iterable[str] = DEFAULT_RANK_METRICS,
    *,
    names: tuple[str, str] = ("a", "b"),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Both-direction retrieval metrics of precomputed embeddings under cosine similarity.

    Row ``i`` of ``a`` and row ``i`` of ``b`` are each other's positive; every
    row of the other side is a candidate. Scores are computed ``chunk_size``
    queries at a time, so memory stays at ``chunk_size × n`` scores. Metric
    names: ``{names[0]}->{names[1]}/{metric}`` and the reverse.
    """
    ta, tb = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    if ta.shape[0] != tb.shape[0]:
        raise ValueError(f"both sides need the same number of rows, got {ta.shape[0]} and {tb.shape[0]}")
    ta, tb = F.normalize(ta, dim=1), F.normalize(tb, dim=1)
    metrics = _check_rank_metrics(metrics)
    diag = torch.arange(len(ta))
    out: dict[str, float] = {}
    if len(ta) * len(tb) <= FULL_MATRIX_ELEMENTS:  # one product serves both directions
        s = ta @ tb.T
        out.update(
            {f"{names[0]}->{names[1]}/{k}": v for k, v in rank_metrics(ranks_from_scores(s, diag), metrics).items()}
        )
        out.update(
            {f"{names[1]}->{names[0]}/{k}": v for k, v in rank_metrics(ranks_from_scores(s.T, diag), metrics).items()}
        )
        return out
    for (qn, q), (cn, c) in (((names[0], ta), (names[1], tb)), ((names[1], tb), (names[0], ta))):
        ranks = torch.cat(
            [
                ranks_from_scores(q[i : i + chunk_size] @ c.T, diag[i : i + chunk_size])
                for i in range(0, len(q), chunk_size)
            ]
        )
        out.update({f"{qn}->{cn}/{k}": v for k, v in rank_metrics(ranks, metrics).items()})
    return out


def _check_ir_metric(m: str) -> str:
    if not _IR_RE.match(m):
        hint = did_you_mean(m, [*DEFAULT_IR_METRICS, "ndcg@100", "recall@10", "recall@1000", "mrr@100"])
        raise ValueError(
            f"unknown IR metric {m!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + "; known: ndcg@K, recall@K, mrr@K (K >= 1)"
        )
    return m


def _check_ir_metrics(metrics: Iterable[str]) -> list[str]:
    return [_check_ir_metric(m) for m in metrics]


def ir_metrics(scores: Tensor, relevance: Tensor, metrics: Iterable[str] = DEFAULT_IR_METRICS) -> dict[str, Tensor]:
    """Per-query IR metrics of a score matrix against graded relevance (as pytrec_eval / BEIR define them).

    ``scores`` and ``relevance`` are [n_queries, n_docs]; a document is relevant
    when its relevance is > 0. Documents are ranked by descending score, ties
    broken by column order (stable sort).

    * ``ndcg@K``: sum_{i<=K} rel_i / log2(i + 1) over the ideal ordering of all
      judged documents (linear gain, as pytrec_eval); 0 when nothing is relevant;
    * ``recall@K``: relevant documents in the top K / all relevant (0 when none);
    * ``mrr@K``: 1 / rank of the first relevant document within the top K, else 0.

    Returns ``{metric: [n_queries] float64 tensor}``.
    """
    metrics = _check_ir_metrics(metrics)
    if scores.shape != relevance.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and relevance {tuple(relevance.shape)} differ in shape")
    n_docs = scores.shape[1]
    k_max = min(max(int(m.split("@")[1]) for m in metrics), n_docs)
    s = torch.nan_to_num(scores.float(), nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k_max]
    rel = relevance.to(s.device, torch.float64).clamp(min=0)
    gains = rel.gather(1, order)
    hit = gains > 0
    n_rel = (rel > 0).sum(dim=1).double()
    ideal = torch.sort(rel, dim=1, descending=True).values[:, :k_max]
    discount = 1.0 / torch.log2(torch.arange(2, k_max + 2, device=s.device, dtype=torch.float64))
    out: dict[str, Tensor] = {}
    for m in metrics:
        name, k = m.split("@")
        k = min(int(k), k_max)
        if name == "ndcg":
            dcg = (gains[:, :k] * discount[:k]).sum(dim=1)
            idcg = (ideal[:, :k] * discount[:k]).sum(dim=1)
            out[m] = torch.where(idcg > 0, dcg / idcg.clamp(min=1e-300), torch.zeros_like(dcg))
        elif name == "recall":
            found = hit[:, :k].sum(dim=1).double()
            out[m] = torch.where(n_rel > 0, found / n_rel.clamp(min=1), torch.zeros_like(found))
        else:
            first = hit[:, :k].double().argmax(dim=1)
            out[m] = torch.where(
                hit[:, :k].any(dim=1),
                1.0 / (first + 1).double(),
                torch.zeros(len(s), dtype=torch.float64, device=s.device),
            )
    return {k: v.cpu() for k, v in out.items()}


# =========================================================================== embedding and scoring
class _Embedded:
    """One side's items embedded at several granularities, kept on the model's device.

    Pooled granularities are [n, D] tensors; sequence granularities keep one
    [L_i, D] tensor per item (the masked-in elements) and are re-padded for
    any subset of items, so chunks can be chosen freely.
    """

    def __init__(self, n: int, order: list[int], pooled: dict[str, Tensor], seqs: dict[str, list[Tensor]]) -> None:
        self.n = n
        self.order = order  # item indices, longest first
        self.pooled = pooled
        self.seqs = seqs

    def is_pooled(self, grans: Iterable[str]) -> bool:
        """True when every granularity in ``grans`` is pooled."""
        return all(g in self.pooled for g in grans)

    def batch(self, gran: str, idx: Tensor | slice) -> Granularity:
        """The items at ``idx`` as one :class:`Granularity` (sequences padded on the right).

        A slice of a pooled granularity is a view (no copy).
        """
        if gran in self.pooled:
            if isinstance(idx, slice):
                return Granularity(self.pooled[gran][idx])
            return Granularity(self.pooled[gran].index_select(0, idx.to(self.pooled[gran].device)))
        rng = range(self.n)[idx] if isinstance(idx, slice) else idx.tolist()
        items = [self.seqs[gran][i] for i in rng]
        lengths = torch.tensor([len(t) for t in items], device=items[0].device)
        hidden = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
        mask = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0) < lengths.unsqueeze(1)
        return Granularity(hidden, mask)


def _progress(it: Iterable[Any], show: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, unit="batch", disable=None, leave=False)


@torch.inference_mode()
def _embed(
    model: AssembledModel, tower: str, items: Sequence[Any], grans: Iterable[str], batch_size: int, progress: bool
) -> _Embedded:
    """Encode ``items`` once with ``tower`` and keep every granularity in ``grans``."""
    grans = list(dict.fromkeys(grans))
    shapes = model.granularities(tower)
    for g in grans:
        if g not in shapes:
            raise InputError(f"tower {tower!r} has no granularity {g!r}; it has: {', '.join(shapes)}")
    n = len(items)
    if n == 0:
        raise InputError(f"no items to encode with tower {tower!r}")
    t = model.tower(tower)
    order = sorted(range(n), key=lambda i: -t.tokenizer.sort_key(items[i]))
    pooled_parts: dict[str, list[Tensor]] = {g: [] for g in grans if shapes[g] == "pooled"}
    seq_parts: dict[str, list[Tensor]] = {g: [] for g in grans if shapes[g] != "pooled"}
    was_training = model.training
    model.eval()
    try:
        starts = range(0, n, batch_size)
        for start in _progress(starts, progress, f"encode {tower}", len(starts)):
            idx = order[start : start + batch_size]
            encoded = model.encode_batch(tower, [items[i] for i in idx])
            for g in pooled_parts:
                pooled_parts[g].append(encoded[g].hidden.float())
            for g in seq_parts:
                gr = encoded[g]
                hidden, mask = gr.hidden.float(), gr.full_mask()
                seq_parts[g].extend(hidden[j][mask[j]] for j in range(len(idx)))
    finally:
        model.train(was_training)
    inverse = torch.empty(n, dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(n)
    pooled = {}
    for g, parts in pooled_parts.items():
        stacked = torch.cat(parts)
        pooled[g] = stacked.index_select(0, inverse.to(stacked.device))
    seqs = {g: [parts[int(k)] for k in inverse] for g, parts in seq_parts.items()}
    return _Embedded(n, order, pooled, seqs)


@dataclass
class _Term:
    """One alignment in a (weighted) sum, oriented towards sides A and B."""

    name: str
    weight: float
    gran_a: str
    gran_b: str
    a_first: bool  # the aligner takes side A as its first argument


def _resolve_on(model: AssembledModel, on: str | dict[str, float] | None, what: str) -> dict[str, float]:
    names = list(model.alignment_between)
    if on is None:
        if len(names) != 1:
            raise ConfigError(
                f"{what}: the model has {len(names)} alignments; name the one to score with 'on:'",
                path="on",
                allowed=names,
                hint="on: an alignment name, or {alignment: weight, ...} for a weighted sum",
            )
        return {names[0]: 1.0}
    weights = {on: 1.0} if isinstance(on, str) else dict(on)
    for name in weights:
        if name not in model.alignment_between:
            raise ConfigError(f"{what}: the model has no alignment {name!r}", path="on", found=name, allowed=names)
    return weights


def _terms(model: AssembledModel, weights: dict[str, float], tower_a: str, tower_b: str, what: str) -> list[_Term]:
    """Orient every alignment in ``weights`` to towers (A, B)."""
    out = []
    for name, w in weights.items():
        (t1, g1), (t2, g2) = model.alignment_between[name]
        if (t1, t2) == (tower_a, tower_b):
            out.append(_Term(name, float(w), g1, g2, True))
        elif (t2, t1) == (tower_a, tower_b):
            out.append(_Term(name, float(w), g2, g1, False))
        else:
            raise ConfigError(
                f"{what}: alignment {name!r} is between towers {t1!r} and {t2!r}, "
                f"but the evaluated towers are {tower_a!r} and {tower_b!r}",
                path="on",
                hint="every alignment in 'on:' must connect the same two towers",
            )
    return out


#: Elements of one [queries, candidates] score block when ``chunk_size`` is left to repmix (pooled sides).
BLOCK_ELEMENTS = 2**22


def _chunk_sizes(
    pooled: bool, n_candidates: int, chunk_size: int | None, candidate_chunk_size: int | None
) -> tuple[int, int]:
    """(queries, candidates) per aligner call: the configured values, or defaults by granularity shape."""
    if candidate_chunk_size is None:
        candidate_chunk_size = 16384 if pooled else 1024
    if chunk_size is None:
        chunk_size = (
            max(16, min(4096, BLOCK_ELEMENTS // max(1, min(n_candidates, candidate_chunk_size)))) if pooled else 64
        )
    return chunk_size, candidate_chunk_size


def _score_blocks(
    model: AssembledModel,
    terms: list[_Term],
    queries: _Embedded,
    query_rows: Sequence[int],
    candidates: _Embedded,
    *,
    queries_are_a: bool,
    chunk_size: int | None,
    candidate_chunk_size: int | None,
    progress: bool = False,
    desc: str = "score",
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (row indices, weighted scores [len(rows), n_candidates]) for chunks of query rows.

    ``query_rows[i]`` is the item of ``queries`` that row ``i`` asks with.
    Pooled sides are sliced in order (views, no copies); sequence sides are
    chunked by item length (less padding) and the block's columns are put back
    in candidate order at the end. Columns of the block follow ``candidates``.
    """
    device = model.device
    q_grans = [t.gran_a if queries_are_a else t.gran_b for t in terms]
    c_grans = [t.gran_b if queries_are_a else t.gran_a for t in terms]
    q_pooled, c_pooled = queries.is_pooled(q_grans), candidates.is_pooled(c_grans)
    rows_per, cands_per = _chunk_sizes(q_pooled and c_pooled, candidates.n, chunk_size, candidate_chunk_size)
    m = candidates.n
    spans = [(start, min(start + cands_per, m)) for start in range(0, m, cands_per)]
    inverse: Tensor | None = None
    if c_pooled:
        c_idx: list[Tensor | slice] = [slice(a, b) for a, b in spans]
    else:
        order = torch.tensor(candidates.order, dtype=torch.long)
        c_idx = [order[a:b] for a, b in spans]
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(m)
        inverse = inverse.to(device)
    cached = {g: [candidates.batch(g, i) for i in c_idx] for g in dict.fromkeys(c_grans)}
    n_rows = len(query_rows)
    if q_pooled:
        row_order = list(range(n_rows))
    else:
        rank_of = {item: k for k, item in enumerate(queries.order)}
        row_order = sorted(range(n_rows), key=lambda r: rank_of[query_rows[r]])
    row_chunks = list(torch.tensor(row_order, dtype=torch.long).split(rows_per))
    identity_rows = q_pooled and list(query_rows) == list(range(queries.n))
    rows_to_items = torch.tensor(list(query_rows), dtype=torch.long)
    with torch.inference_mode():
        was_training = model.training
        model.eval()
        try:
            for rows in _progress(row_chunks, progress, desc, len(row_chunks)):
                if identity_rows:
                    items: Tensor | slice = slice(int(rows[0]), int(rows[-1]) + 1)
                else:
                    items = rows_to_items.index_select(0, rows)
                block: Tensor | None = None
                for term, qg, cg in zip(terms, q_grans, c_grans, strict=True):
                    aligner = model.aligners[term.name]
                    q = queries.batch(qg, items)
                    q_first = term.a_first == queries_are_a
                    parts = [
                        aligner(q, c).scores if q_first else aligner(c, q).scores.transpose(0, 1) for c in cached[cg]
                    ]
                    s = (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)).float()
                    if term.weight != 1.0:
                        s = term.weight * s
                    block = s if block is None else block + s
                assert block is not None
                if inverse is not None:
                    block = block.index_select(1, inverse)
                yield rows.to(device), block
        finally:
            model.train(was_training)


def alignment_scores(
    model: AssembledModel,
    on: str | dict[str, float],
    query_tower: str,
    query_items: Sequence[Any],
    candidate_tower: str,
    candidate_items: Sequence[Any],
    *,
    batch_size: int = 64,
    chunk_size: int | None = None,
    candidate_chunk_size: int | None = None,
) -> Tensor:
    """The full (weighted) alignment score matrix [len(query_items), len(candidate_items)].

    The same chunked computation the evaluators use, materialised; meant for
    small inputs, tests and inspection.
    """
    weights = _resolve_on(model, on, "alignment_scores")
    terms = _terms(model, weights, query_tower, candidate_tower, "alignment_scores")
    q = _embed(model, query_tower, query_items, [t.gran_a for t in terms], batch_size, False)
    c = _embed(model, candidate_tower, candidate_items, [t.gran_b for t in terms], batch_size, False)
    out = torch.empty(len(query_items), len(candidate_items))
    for rows, block in _score_blocks(
        model,
        terms,
        q,
        range(len(query_items)),
        c,
        queries_are_a=True,
        chunk_size=chunk_size,
        candidate_chunk_size=candidate_chunk_size,
    ):
        out[rows.cpu()] = block.cpu()
    return out


def _check_on(v: str | dict[str, float] | None) -> str | dict[str, float] | None:
    if isinstance(v, dict):
        if not v:
            raise ValueError("on: give at least one alignment")
        for name, w in v.items():
            if not math.isfinite(w):
                raise ValueError(f"on: weight of {name!r} must be a finite number, got {w}")
    return v


# =========================================================================== retrieval
class ExtraCandidatesFile(ComponentConfig):
    """Extra candidates read from a file: ``*.txt`` one item per line, or a column of a TSV/CSV/JSONL file."""

    path: str = Field(description="*.txt (one item per line) or a TSV/CSV/JSONL file")
    tower: str = Field(description="the side (tower, or data column with columns:) these candidates join")
    column: str | None = Field(None, description="column of a table holding the items (default: the tower name)")
    on_error: Literal["raise", "skip"] = Field("raise", description="malformed row: raise or skip")


def _extra_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "dataset" if "type" in v else "file"
    return "file" if isinstance(v, ExtraCandidatesFile) else "dataset"


ExtraCandidates = Annotated[
    Annotated[ExtraCandidatesFile, Tag("file")] | Annotated[dict[str, Any], Tag("dataset")],
    Discriminator(_extra_kind),
]


class _ScoringConfig(ComponentConfig):
    on: str | dict[str, float] | None = Field(
        None, description="alignment scored, or {alignment: weight} for a weighted sum (default: the only one)"
    )
    batch_size: int = Field(64, ge=1, description="items encoded per forward pass")
    chunk_size: int | None = Field(
        None, ge=1, description="queries scored per aligner call (default: by memory for pooled sides, else 64)"
    )
    candidate_chunk_size: int | None = Field(
        None, ge=1, description="candidates per aligner call (default: 16384 pooled, 1024 sequences)"
    )
    progress: bool = Field(True, description="progress bars (shown on a terminal only)")

    @field_validator("on")
    @classmethod
    def _on(cls, v: str | dict[str, float] | None) -> str | dict[str, float] | None:
        return _check_on(v)


class RetrievalConfig(_ScoringConfig):
    """``retrieval``: rank every candidate for every example, in both directions."""

    metrics: list[Annotated[str, AfterValidator(_check_rank_metric)]] = Field(
        default_factory=lambda: list(DEFAULT_RANK_METRICS),
        min_length=1,
        description="of mrr, hits@K, mean_rank, median_rank",
    )
    directions: Literal["both", "forward", "backward"] = Field(
        "both", description="forward: first tower of the alignment -> second; backward: the reverse"
    )
    columns: tuple[str, str] | None = Field(
        None, description="data columns read by the two sides (default: the towers' names)"
    )
    extra_candidates: ExtraCandidates | None = Field(
        None, description="more targets: a dataset block, or {path, tower, column} of a file"
    )
    corpus: bool = Field(True, description="rank against Examples.extras['corpus_texts'] when the data has one")

    @model_validator(mode="after")
    def _columns(self) -> RetrievalConfig:
        if self.columns is not None and self.columns[0] == self.columns[1]:
            raise ValueError("columns must name two different data columns")
        return self


def _build_dataset(block: dict[str, Any]) -> Dataset:
    """Instantiate a dataset block outside a config (when the engine did not build it as a nested component)."""
    from repmix.sdk import LocatedConfig, build_component

    return build_component(LocatedConfig({"extra_candidates": block}), "dataset", block, ("extra_candidates",))


@dataclass
class _Side:
    """One side of a retrieval: its tower, its item pool, and each row's item in the pool."""

    column: str
    tower: str
    items: list[Any]
    rows: list[int]


class RetrievalEvaluator(Evaluator):
    """Cross-modal / cross-tower retrieval: MRR, Hits@K, mean and median rank, in both directions.

    Example ``i``'s positive is candidate ``i``: the candidate pool of a
    direction is the whole evaluated split on the target side, plus
    ``extra_candidates`` (targets only, never queries), or the data's explicit
    corpus (``Examples.extras['corpus_texts']`` from ``beir``). Metrics are named
    ``{query_side}->{target_side}/{metric}``, sides being tower names (or the
    data ``columns`` when given).
    """

    Config: ClassVar[type[ComponentConfig]] = RetrievalConfig
    citation: ClassVar[str] = (
        "Edwards, Zhai and Ji. Text2Mol: Cross-Modal Molecule Retrieval with Natural Language Queries. "
        "EMNLP 2021 (MRR / Hits@K / mean rank protocol)."
    )
    config: RetrievalConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._extra_dataset: Dataset | None = runtime.nested.get("extra_candidates")  # type: ignore[assignment]
        self._extras: dict[str, list[Any]] | None = None

    @classmethod
    def nested_components(cls, config: ComponentConfig) -> dict[str, tuple[str, dict[str, Any]]]:
        """``extra_candidates`` given as a dataset block is a nested dataset component."""
        block = getattr(config, "extra_candidates", None)
        return {"extra_candidates": ("dataset", block)} if isinstance(block, dict) else {}

    def extra_items(self) -> dict[str, list[Any]]:
        """Extra candidates by tower (or data column) name, read once."""
        if self._extras is None:
            spec = self.config.extra_candidates
            if spec is None:
                self._extras = {}
            elif isinstance(spec, ExtraCandidatesFile):
                from repmix_std.datasets import read_items

                self._extras = {spec.tower: read_items(spec.path, spec.column or spec.tower, on_error=spec.on_error)}
            else:
                dataset = self._extra_dataset or _build_dataset(spec)
                self._extras = {k: list(v) for k, v in dataset.load().columns.items()}
        return self._extras

    def _sides(self, model: AssembledModel, data: Examples, terms_towers: tuple[str, str]) -> tuple[_Side, _Side]:
        ta, tb = terms_towers
        cols = self.config.columns or (ta, tb)
        if cols[0] == cols[1]:
            raise ConfigError(
                f"retrieval: the alignment is between tower {ta!r} and itself; name the two data columns to compare",
                path="columns",
                hint=f"columns: [<column>, <column>] from: {', '.join(data.columns)}",
            )
        for c in cols:
            if c not in data.columns:
                raise InputError(
                    f"retrieval needs data column {c!r}, but the data has only: {', '.join(data.columns)}",
                    hint="dataset fields map tower names to file columns; or set columns: [a, b] on the evaluator",
                )
        n = len(data)
        sides = [_Side(c, t, list(data.columns[c]), list(range(n))) for c, t in zip(cols, (ta, tb), strict=True)]
        corpus = data.extras.get("corpus_texts")
        if self.config.corpus and corpus is not None:
            for side in sides:
                if side.column == data.extras.get("document_tower"):
                    index: dict[Any, int] = {}
                    for i, text in enumerate(corpus):
                        index.setdefault(text, i)
                    missing = [x for x in side.items if x not in index]
                    if missing:
                        raise InputError(f"retrieval: {len(missing)} document(s) of the data are not in its corpus")
                    side.rows = [index[x] for x in side.items]
                    side.items = list(corpus)
        extras = self.extra_items()
        if extras:
            matched = [s for s in sides if s.column in extras]
            if not matched:
                raise InputError(
                    f"extra_candidates provide {', '.join(extras)}, but the retrieval sides are "
                    f"{sides[0].column!r} and {sides[1].column!r}"
                )
            for s in matched:
                s.items = s.items + list(extras[s.column])
        return sides[0], sides[1]

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        """Rank all candidates for every example; return ``{query->target/metric: value}``."""
        c = self.config
        if len(data) == 0:
            raise InputError("retrieval: the evaluated split is empty")
        weights = _resolve_on(model, c.on, "retrieval")
        (ta, _), (tb, _) = model.alignment_between[next(iter(weights))]
        terms = _terms(model, weights, ta, tb, "retrieval")
        a, b = self._sides(model, data, (ta, tb))
        emb_a = _embed(model, a.tower, a.items, [t.gran_a for t in terms], c.batch_size, c.progress)
        emb_b = _embed(model, b.tower, b.items, [t.gran_b for t in terms], c.batch_size, c.progress)
        return _retrieval(
            model,
            terms,
            (a.column, emb_a, a.rows),
            (b.column, emb_b, b.rows),
            c.directions,
            c.metrics,
            chunk_size=c.chunk_size,
            candidate_chunk_size=c.candidate_chunk_size,
            progress=c.progress,
        )


def _retrieval(
    model: AssembledModel,
    terms: list[_Term],
    a: tuple[str, _Embedded, Sequence[int]],
    b: tuple[str, _Embedded, Sequence[int]],
    directions: str,
    metrics: Sequence[str],
    *,
    chunk_size: int | None,
    candidate_chunk_size: int | None,
    progress: bool = False,
) -> dict[str, float]:
    """Rank metrics per direction; ``a``/``b`` = (name, embedded pool, pool index of each row).

    Every score is ``s(a_item, b_item)`` whichever side asks, so when both
    directions are wanted and the pool × pool matrix has at most
    :data:`FULL_MATRIX_ELEMENTS` entries, it is computed once and read row-wise
    (a -> b) and column-wise (b -> a): half the aligner work.
    """
    (a_name, a_emb, a_rows), (b_name, b_emb, b_rows) = a, b
    if directions == "both" and a_emb.n * b_emb.n <= FULL_MATRIX_ELEMENTS:
        pooled = a_emb.is_pooled(t.gran_a for t in terms) and b_emb.is_pooled(t.gran_b for t in terms)
        if chunk_size is None and pooled:
            chunk_size = a_emb.n  # the whole matrix is kept anyway: one aligner call per candidate chunk
        full: Tensor | None = None
        for rows, block in _score_blocks(
            model,
            terms,
            a_emb,
            range(a_emb.n),
            b_emb,
            queries_are_a=True,
            chunk_size=chunk_size,
            candidate_chunk_size=candidate_chunk_size,
            progress=progress,
            desc=f"{a_name}<->{b_name}",
        ):
            if (
                full is None
                and len(rows) == a_emb.n
                and bool((rows == torch.arange(a_emb.n, device=rows.device)).all())
            ):
                full = block  # one chunk held every row, in order
                continue
            if full is None:
                full = torch.empty(a_emb.n, b_emb.n, device=model.device)
            full[rows] = block
        assert full is not None
        ia = torch.tensor(list(a_rows), dtype=torch.long, device=full.device)
        ib = torch.tensor(list(b_rows), dtype=torch.long, device=full.device)
        forward = full if list(a_rows) == list(range(a_emb.n)) else full.index_select(0, ia)
        backward = (full if list(b_rows) == list(range(b_emb.n)) else full.index_select(1, ib)).T
        out = {f"{a_name}->{b_name}/{k}": v for k, v in rank_metrics(ranks_from_scores(forward, ib), metrics).items()}
        out.update(
            {f"{b_name}->{a_name}/{k}": v for k, v in rank_metrics(ranks_from_scores(backward, ia), metrics).items()}
        )
        return out
    plans = []
    if directions in ("both", "forward"):
        plans.append((a, b, True))
    if directions in ("both", "backward"):
        plans.append((b, a, False))
    out: dict[str, float] = {}
    for (qname, q_emb, q_rows), (tname, t_emb, t_rows), q_is_a in plans:
        ranks = torch.empty(len(q_rows), dtype=torch.long)
        positives = torch.tensor(list(t_rows), dtype=torch.long, device=model.device)
        for rows, block in _score_blocks(
            model,
            terms,
            q_emb,
            q_rows,
            t_emb,
            queries_are_a=q_is_a,
            chunk_size=chunk_size,
            candidate_chunk_size=candidate_chunk_size,
            progress=progress,
            desc=f"{qname}->{tname}",
        ):
            ranks[rows.cpu()] = ranks_from_scores(block, positives.index_select(0, rows)).cpu()
        out.update({f"{qname}->{tname}/{k}": v for k, v in rank_metrics(ranks, metrics).items()})
    return out


def _precomputed(values: dict[str, Tensor | Sequence[Tensor]]) -> _Embedded:
    """Wrap precomputed embeddings (pooled [n, D] tensors or per-item [L_i, D] sequences) for scoring."""
    pooled = {g: v for g, v in values.items() if isinstance(v, Tensor)}
    seqs = {g: list(v) for g, v in values.items() if not isinstance(v, Tensor)}
    sizes = {len(v) for v in (*pooled.values(), *seqs.values())}
    if len(sizes) != 1:
        raise ValueError(f"every granularity needs the same number of items, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if seqs:
        first = next(iter(seqs.values()))
        order = sorted(range(n), key=lambda i: -len(first[i]))
    else:
        order = list(range(n))
    return _Embedded(n, order, pooled, seqs)


def aligned_retrieval_metrics(
    model: AssembledModel,
    on: str | dict[str, float],
    a: dict[str, Tensor | Sequence[Tensor]],
    b: dict[str, Tensor | Sequence[Tensor]],
    *,
    metrics: Sequence[str] = DEFAULT_RANK_METRICS,
    directions: Literal["both", "forward", "backward"] = "both",
    chunk_size: int | None = None,
    candidate_chunk_size: int | None = None,
) -> dict[str, float]:
    """Retrieval metrics of precomputed embeddings, scored through the model's alignment module(s).

    What :class:`RetrievalEvaluator` does after encoding: ``a`` and ``b`` map the
    granularities the alignment(s) read to embeddings (``[n, D]`` tensors for
    pooled ones, a list of ``[L_i, D]`` tensors for sequences); row ``i`` of
    ``a`` and of ``b`` are each other's positive. Sides are named after the
    towers of the first alignment in ``on``.
    """
    weights = _resolve_on(model, on, "aligned_retrieval_metrics")
    (ta, _), (tb, _) = model.alignment_between[next(iter(weights))]
    terms = _terms(model, weights, ta, tb, "aligned_retrieval_metrics")
    ea, eb = _precomputed(a), _precomputed(b)
    if ea.n != eb.n:
        raise ValueError(f"both sides need the same number of rows, got {ea.n} and {eb.n}")
    rows = range(ea.n)
    return _retrieval(
        model,
        terms,
        (ta, ea, rows),
        (tb, eb, rows),
        directions,
        _check_rank_metrics(metrics),
        chunk_size=chunk_size,
        candidate_chunk_size=candidate_chunk_size,
    )


# =========================================================================== sts
class StsEvalConfig(ComponentConfig):
    """``sts``: correlation of predicted similarities with gold scores."""

    on: str | None = Field(None, description="alignment whose two sides are compared (default: the only one)")
    between: tuple[str, str] | None = Field(None, description="[tower.granularity, tower.granularity] instead of on")
    columns: tuple[str, str] | None = Field(
        None, description="data columns read by the two sides (default: the towers' names)"
    )
    similarity: Literal["cosine", "alignment"] = Field(
        "cosine", description="cosine of pooled embeddings, or the alignment's own score of each pair"
    )
    batch_size: int = Field(64, ge=1, description="items encoded per forward pass")
    progress: bool = Field(True, description="progress bars (shown on a terminal only)")

    @field_validator("between")
    @classmethod
    def _refs(cls, v: tuple[str, str] | None) -> tuple[str, str] | None:
        for ref in v or ():
            if "." not in ref:
                raise ValueError(f"between: expected tower.granularity, got {ref!r}")
        return v

    @model_validator(mode="after")
    def _exclusive(self) -> StsEvalConfig:
        if self.on is not None and self.between is not None:
            raise ValueError(
                "give either 'on' (an alignment) or 'between' ([tower.granularity, tower.granularity]), not both"
            )
        if self.similarity == "alignment" and self.between is not None:
            raise ValueError("similarity: alignment scores through an alignment: use 'on', not 'between'")
        return self


class StsEvaluator(Evaluator):
    """Spearman and Pearson correlation between predicted similarities and gold scores.

    Reported raw, in [-1, 1], as sentence-transformers' EmbeddingSimilarityEvaluator
    does: ``spearman_cosine`` / ``pearson_cosine`` for the cosine of the two sides'
    pooled embeddings, or ``spearman_<alignment>`` / ``pearson_<alignment>`` with
    ``similarity: alignment`` (each pair scored by the alignment's own aligner).
    """

    Config: ClassVar[type[ComponentConfig]] = StsEvalConfig
    citation: ClassVar[str] = (
        "Reimers and Gurevych. Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks. EMNLP 2019 "
        "(evaluated as sentence_transformers.evaluation.EmbeddingSimilarityEvaluator)."
    )
    config: StsEvalConfig

    def _refs(self, model: AssembledModel) -> tuple[tuple[str, str], tuple[str, str], str | None]:
        c = self.config
        if c.between is not None:
            refs = tuple(tuple(r.split(".", 1)) for r in c.between)
            for tower, gran in refs:
                grans = model.granularities(tower)
                if gran not in grans:
                    raise ConfigError(
                        f"sts: tower {tower!r} has no granularity {gran!r}",
                        path="between",
                        found=gran,
                        allowed=list(grans),
                    )
            return refs[0], refs[1], None  # type: ignore[return-value]
        name = next(iter(_resolve_on(model, c.on, "sts")))
        (ta, ga), (tb, gb) = model.alignment_between[name]
        return (ta, ga), (tb, gb), name

    def predictions(self, model: AssembledModel, data: Examples) -> np.ndarray:
        """The predicted similarity of every pair, in data order."""
        c = self.config
        (ta, ga), (tb, gb), name = self._refs(model)
        cols = c.columns or (ta, tb)
        if cols[0] == cols[1]:
            raise ConfigError(
                f"sts: both sides read tower {ta!r}; name the two data columns with columns: [a, b]",
                path="columns",
                allowed=list(data.columns),
            )
        for col in cols:
            if col not in data.columns:
                raise InputError(f"sts needs data column {col!r}, but the data has only: {', '.join(data.columns)}")
        emb_a = _embed(model, ta, data.columns[cols[0]], [ga], c.batch_size, c.progress)
        emb_b = _embed(model, tb, data.columns[cols[1]], [gb], c.batch_size, c.progress)
        if c.similarity == "cosine":
            for tower, gran, emb in ((ta, ga, emb_a), (tb, gb, emb_b)):
                if gran not in emb.pooled:
                    raise ConfigError(
                        f"sts: similarity cosine needs pooled granularities, but {tower}.{gran} is a sequence",
                        path="similarity",
                        hint="use similarity: alignment, or a pooled granularity",
                    )
            return F.cosine_similarity(emb_a.pooled[ga], emb_b.pooled[gb], dim=1).cpu().double().numpy()
        assert name is not None
        aligner = model.aligners[name]
        out = []
        with torch.inference_mode():
            was_training = model.training
            model.eval()
            try:
                for idx in torch.arange(len(data), device=model.device).split(c.batch_size):
                    s = aligner(emb_a.batch(ga, idx), emb_b.batch(gb, idx)).scores
                    out.append(s.diagonal().float().cpu())
            finally:
                model.train(was_training)
        return torch.cat(out).double().numpy()

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        """``{spearman_<sim>: ..., pearson_<sim>: ...}`` (raw coefficients in [-1, 1])."""
        from scipy.stats import pearsonr, spearmanr

        if data.targets is None:
            raise InputError(
                "sts needs gold scores (Examples.targets); this dataset provides none",
                hint="use the sts dataset, or pairs with target: <score column>",
            )
        if len(data) < 2:
            raise InputError(f"sts needs at least 2 pairs, got {len(data)}")
        pred = self.predictions(model, data)
        gold = np.asarray(data.targets, dtype=np.float64)
        label = "cosine" if self.config.similarity == "cosine" else self._refs(model)[2]
        return {
            f"spearman_{label}": float(spearmanr(pred, gold).statistic),
            f"pearson_{label}": float(pearsonr(pred, gold).statistic),
        }


# =========================================================================== beir
class BeirEvalConfig(_ScoringConfig):
    """``beir``: rank the whole corpus for every query; nDCG@10, Recall@100, MRR@10."""

    metrics: list[Annotated[str, AfterValidator(_check_ir_metric)]] = Field(
        default_factory=lambda: list(DEFAULT_IR_METRICS), min_length=1, description="of ndcg@K, recall@K, mrr@K"
    )
    query_tower: str | None = Field(None, description="tower encoding queries (default: the beir dataset's)")
    document_tower: str | None = Field(None, description="tower encoding documents (default: the beir dataset's)")
    ignore_identical_ids: bool = Field(
        True, description="leave out a document whose id equals the query id (BEIR's default)"
    )


class BeirEvaluator(Evaluator):
    """BEIR-style retrieval evaluation against graded judgments (qrels).

    Needs the data's ``extras`` as the ``beir`` dataset fills them
    (``corpus_ids``, ``corpus_texts``, ``query_ids``, ``query_texts``, ``qrels``).
    Every query ranks the whole corpus, scored ``chunk_size`` queries at a time
    through the alignment(s) in ``on``. As BEIR does by default, a document
    whose id equals the query id is left out of the ranking
    (``ignore_identical_ids``). Metrics: see :func:`ir_metrics`.
    """

    Config: ClassVar[type[ComponentConfig]] = BeirEvalConfig
    citation: ClassVar[str] = (
        "Thakur, Reimers, Rücklé, Srivastava and Gurevych. BEIR: A Heterogeneous Benchmark for Zero-shot "
        "Evaluation of Information Retrieval Models. NeurIPS 2021 Datasets and Benchmarks."
    )
    config: BeirEvalConfig

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        """Mean of each metric over the evaluated queries."""
        c = self.config
        need = ("corpus_ids", "corpus_texts", "query_ids", "query_texts", "qrels")
        missing = [k for k in need if k not in data.extras]
        if missing:
            raise InputError(
                "beir evaluation needs a corpus, queries and qrels in the data's extras "
                f"(missing: {', '.join(missing)})",
                hint="use the beir dataset (type: beir) for this evaluator",
            )
        ex = data.extras
        qt = c.query_tower or ex.get("query_tower")
        dt = c.document_tower or ex.get("document_tower")
        if qt is None or dt is None:
            raise ConfigError("beir: set query_tower and document_tower", path="query_tower")
        for t in (qt, dt):
            model.tower(t)
        weights = _resolve_on(model, c.on, "beir")
        terms = _terms(model, weights, qt, dt, "beir")
        corpus_ids: list[str] = list(ex["corpus_ids"])
        query_ids: list[str] = list(ex["query_ids"])
        if not query_ids:
            raise InputError("beir: no queries to evaluate")
        doc_index = {d: i for i, d in enumerate(corpus_ids)}
        qrels: dict[str, dict[str, float]] = ex["qrels"]
        emb_q = _embed(model, qt, ex["query_texts"], [t.gran_a for t in terms], c.batch_size, c.progress)
        emb_d = _embed(model, dt, ex["corpus_texts"], [t.gran_b for t in terms], c.batch_size, c.progress)
        sums = {m: 0.0 for m in c.metrics}
        device = model.device
        for rows, block in _score_blocks(
            model,
            terms,
            emb_q,
            range(len(query_ids)),
            emb_d,
            queries_are_a=True,
            chunk_size=c.chunk_size,
            candidate_chunk_size=c.candidate_chunk_size,
            progress=c.progress,
            desc="rank corpus",
        ):
            relevance = torch.zeros(block.shape, dtype=torch.float64, device=device)
            for r, row in enumerate(rows.tolist()):
                qid = query_ids[row]
                for did, score in qrels.get(qid, {}).items():
                    if did in doc_index:
                        relevance[r, doc_index[did]] = score
                if c.ignore_identical_ids and qid in doc_index:
                    block[r, doc_index[qid]] = -math.inf
            for m, values in ir_metrics(block, relevance, c.metrics).items():
                sums[m] += float(values.sum())
        return {m: v / len(query_ids) for m, v in sums.items()}
