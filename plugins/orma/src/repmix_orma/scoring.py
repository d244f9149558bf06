"""Retrieval with comparable score levels: ``orma.level-retrieval``.

ORMA's retrieval score is the weighted sum of its levels' raw scores
(sentence–molecule dot product, token–atom and multi-token–motif pooled
logits). The levels live on different scales, and a molecule without BRICS
motifs scores exactly 0 at the multi-token–motif level against every text
while molecules with motifs score around 180, so the sum ranks every
motif-less molecule below the others for every text (docs/results/orma.md).

This evaluator computes every level's score matrix once and reports, side by
side (``scores:``):

* ``weighted``: ORMA's score, ``sum_l w_l S_l`` (raw scores);
* ``zscore``: each level standardised over the candidate set of each query
  (row-wise for text->molecule, column-wise for molecule->text) before the
  weighted sum, so every level contributes on the same scale;
* ``zscore-fallback``: ``zscore``, and where the molecule side of a level has
  no element (a molecule without motifs at the motif level) that level's
  z-score is replaced by the first level's (the molecule node), so a
  motif-less molecule is neither punished nor rewarded by a level that cannot
  see it;
* ``level:<name>``: each level alone.

With ``rerank: N`` the fine levels are scored only for each query's top ``N``
candidates by the first level (the pooled one); the z-scores are then taken
over those ``N``; candidates beyond ``N`` keep the first level's order after
them. This is what ``repmix search --rerank N`` does, and it makes a fine
level affordable on a CPU (N pairs per query instead of all).

Metrics: ``<score>/<query>-><target>/<metric>`` with ``mrr``, ``hits@K``,
``mean_rank``, ``median_rank``; rank = 1 + the number of candidates scoring
strictly higher than the positive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Evaluator,
    Examples,
    Granularity,
    InputError,
    Model,
    Runtime,
)
from torch import Tensor

__all__ = [
    "LevelRetrievalConfig",
    "LevelRetrievalEvaluator",
    "SideStore",
    "combine_levels",
    "rank_metrics",
    "ranks_of_positives",
]

_METRIC = re.compile(r"^(mrr|mean_rank|median_rank|hits@([1-9][0-9]*))$")


class LevelRetrievalConfig(ComponentConfig):
    """Options of ``orma.level-retrieval``."""

    levels: dict[str, float] = Field(
        description="alignment name -> weight; the first is the pooled level (rerank order, fallback)"
    )
    scores: list[str] = Field(
        default_factory=lambda: ["weighted", "zscore", "zscore-fallback", "levels"],
        description="weighted, zscore, zscore-fallback, and 'levels' (each level alone) or 'level:<name>'",
    )
    metrics: list[str] = Field(default_factory=lambda: ["mrr", "hits@1", "hits@10", "mean_rank"])
    directions: Literal["both", "forward", "backward"] = Field(
        "both", description="text->molecule (forward), molecule->text (backward) or both"
    )
    rerank: int | None = Field(None, ge=1, description="fine levels only on each query's top N by the first level")
    batch_size: int = Field(32, ge=1, description="items encoded per forward pass")
    block: int = Field(64, ge=1, description="queries x candidates per aligner call (block x block)")

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: list[str]) -> list[str]:
        for m in value:
            if not _METRIC.match(m):
                raise ValueError(f"unknown metric {m!r}: use mrr, mean_rank, median_rank or hits@K")
        return value

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("levels must name at least one alignment")
        return value


# ------------------------------------------------------------------ storage
class SideStore:
    """One side's items at several granularities: pooled [n, D], sequences kept per item and re-padded."""

    def __init__(self, pooled: dict[str, Tensor], seqs: dict[str, list[Tensor]], n: int) -> None:
        self.pooled = pooled
        self.seqs = seqs
        self.n = n

    @classmethod
    def encode(cls, model: Model, tower: str, items: Sequence[Any], grans: Sequence[str], batch_size: int) -> SideStore:
        """Encode ``items`` once with ``tower`` and keep the granularities ``grans``."""
        grans = list(dict.fromkeys(grans))
        t = model.tower(tower)
        order = sorted(range(len(items)), key=lambda i: -t.tokenizer.sort_key(items[i]))
        pooled: dict[str, list[Tensor]] = {g: [] for g in grans}
        seqs: dict[str, list[Tensor | None]] = {g: [None] * len(items) for g in grans}
        pooled_rows: list[int] = []
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = model.encode_batch(tower, [items[i] for i in idx])
                pooled_rows.extend(idx)
                for g in grans:
                    gran = enc[g]
                    if gran.hidden.dim() == 2:
                        pooled[g].append(gran.hidden.float().cpu())
                    else:
                        mask = gran.full_mask().cpu()
                        h = gran.hidden.float().cpu()
                        for j, i in enumerate(idx):
                            seqs[g][i] = h[j][mask[j]].clone()
        inverse = torch.empty(len(items), dtype=torch.long)
        inverse[torch.tensor(pooled_rows, dtype=torch.long)] = torch.arange(len(items))
        out_pooled = {g: torch.cat(v)[inverse] for g, v in pooled.items() if v}
        out_seqs = {g: [x for x in v if x is not None] for g, v in seqs.items() if v and v[0] is not None}
        return cls(out_pooled, out_seqs, len(items))  # type: ignore[arg-type]

    def get(self, gran: str, rows: Sequence[int] | Tensor) -> Granularity:
        """The granularity for ``rows`` (sequences padded to their longest, at least 1)."""
        rows = [int(r) for r in rows]
        if gran in self.pooled:
            return Granularity(self.pooled[gran][rows])
        items = [self.seqs[gran][r] for r in rows]
        width = max(1, max(x.shape[0] for x in items))
        dim = items[0].shape[-1]
        hidden = torch.zeros(len(rows), width, dim)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for j, x in enumerate(items):
            hidden[j, : x.shape[0]] = x
            mask[j, : x.shape[0]] = True
        return Granularity(hidden, mask)

    def empty(self, gran: str) -> Tensor:
        """[n] True where the item has no element at a sequence granularity (e.g. no motif)."""
        if gran in self.pooled:
            return torch.zeros(self.n, dtype=torch.bool)
        return torch.tensor([x.shape[0] == 0 for x in self.seqs[gran]], dtype=torch.bool)


@dataclass
class Level:
    """One alignment as a retrieval level."""

    name: str
    weight: float
    gran_a: str
    gran_b: str
    aligner: Any


def levels_of(model: Model, weights: dict[str, float]) -> tuple[str, str, list[Level]]:
    """The two towers and the levels; every level must align the same two towers in the same order."""
    levels: list[Level] = []
    towers: tuple[str, str] | None = None
    for name, w in weights.items():
        if name not in model.alignment_between:
            raise ConfigError(
                f"level {name!r} is not an alignment of the model",
                path="levels",
                found=name,
                allowed=sorted(model.alignment_between),
            )
        (ta, ga), (tb, gb) = model.alignment_between[name]
        if towers is None:
            towers = (ta, tb)
        elif towers != (ta, tb):
            raise ConfigError(f"level {name!r} aligns {ta}/{tb}, the first level {towers[0]}/{towers[1]}")
        levels.append(Level(name, float(w), ga, gb, model.aligners[name]))
    assert towers is not None
    return towers[0], towers[1], levels


def score_block(level: Level, a: SideStore, b: SideStore, rows_a: Sequence[int], rows_b: Sequence[int]) -> Tensor:
    """The level's scores [len(rows_a), len(rows_b)] (all pairs)."""
    with torch.inference_mode():
        return level.aligner(a.get(level.gran_a, rows_a), b.get(level.gran_b, rows_b)).scores.float().cpu()


def full_matrix(level: Level, a: SideStore, b: SideStore, block: int) -> Tensor:
    """Every pair's score [n_a, n_b], computed in blocks."""
    out = torch.empty(a.n, b.n)
    for i in range(0, a.n, block):
        ra = list(range(i, min(i + block, a.n)))
        for j in range(0, b.n, block):
            rb = list(range(j, min(j + block, b.n)))
            out[i : i + len(ra), j : j + len(rb)] = score_block(level, a, b, ra, rb)
    return out


# ------------------------------------------------------------------ combining
def zscore(scores: Tensor, dim: int = -1) -> Tensor:
    """Standardise along ``dim`` (a constant slice becomes 0)."""
    mean = scores.mean(dim=dim, keepdim=True)
    std = scores.std(dim=dim, keepdim=True, unbiased=False)
    return torch.where(std > 0, (scores - mean) / std.clamp(min=1e-12), torch.zeros_like(scores))


def combine_levels(
    mats: Sequence[Tensor], weights: Sequence[float], how: str, empty: Sequence[Tensor] | None = None
) -> Tensor:
    """Combine per-level [queries, candidates] matrices (candidates along the last dim).

    ``how``: ``weighted`` (raw sum), ``zscore`` (each level standardised per
    query), ``zscore-fallback`` (``zscore``, and where ``empty[l]`` [queries,
    candidates] is True, level ``l``'s z-score is the first level's).
    """
    if how == "weighted":
        return sum(w * m for w, m in zip(weights, mats))  # type: ignore[return-value]
    zs = [zscore(m) for m in mats]
    if how == "zscore-fallback":
        assert empty is not None
        zs = [zs[0]] + [torch.where(e, zs[0], z) for z, e in zip(zs[1:], empty[1:])]
    elif how != "zscore":
        raise ValueError(f"unknown score combination {how!r}")
    return sum(w * z for w, z in zip(weights, zs))  # type: ignore[return-value]


def ranks_of_positives(scores: Tensor, positives: Tensor) -> Tensor:
    """1-based rank of each row's positive column: 1 + #candidates scoring strictly higher."""
    pos = scores.gather(1, positives.view(-1, 1))
    return (scores > pos).sum(dim=1) + 1


def rank_metrics(ranks: Tensor, metrics: Sequence[str]) -> dict[str, float]:
    """MRR, Hits@K, mean and median rank of 1-based ranks."""
    r = ranks.double()
    out: dict[str, float] = {}
    for m in metrics:
        if m == "mrr":
            out[m] = float((1.0 / r).mean())
        elif m == "mean_rank":
            out[m] = float(r.mean())
        elif m == "median_rank":
            out[m] = float(r.median())
        else:
            out[m] = float((r <= int(m.split("@")[1])).double().mean())
    return out


# ------------------------------------------------------------------ evaluator
class LevelRetrievalEvaluator(Evaluator):
    """Text<->molecule retrieval over ORMA's levels, with raw, z-scored and fallback combinations."""

    Config: ClassVar[type[ComponentConfig]] = LevelRetrievalConfig
    citation: ClassVar[str] = (
        "Min, Liu et al. ORMA. IEEE BIBM 2024 (weighted multi-level score); z-scored levels: repmix-orma."
    )
    config: LevelRetrievalConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def _score_names(self, levels: list[Level]) -> list[str]:
        names: list[str] = []
        known = {lv.name for lv in levels}
        for s in self.config.scores:
            if s == "levels":
                names += [f"level:{lv.name}" for lv in levels]
            elif s.startswith("level:"):
                if s[6:] not in known:
                    raise ConfigError(f"score {s!r} names no level", path="scores", found=s, allowed=sorted(known))
                names.append(s)
            elif s in ("weighted", "zscore", "zscore-fallback"):
                names.append(s)
            else:
                raise ConfigError(
                    f"unknown score {s!r}",
                    path="scores",
                    found=s,
                    allowed=["weighted", "zscore", "zscore-fallback", "levels", "level:<name>"],
                )
        return list(dict.fromkeys(names))

    def evaluate(self, model: Model, data: Examples) -> dict[str, float]:
        """Encode both sides once, score every level, report every requested combination."""
        c = self.config
        ta, tb, levels = levels_of(model, dict(c.levels))
        for t in (ta, tb):
            if t not in data.columns:
                raise InputError(f"level retrieval needs data column {t!r}; the data has {', '.join(data.columns)}")
        if len(data) == 0:
            raise InputError("level retrieval: the evaluated split is empty")
        a = SideStore.encode(model, ta, data.columns[ta], [lv.gran_a for lv in levels], c.batch_size)
        b = SideStore.encode(model, tb, data.columns[tb], [lv.gran_b for lv in levels], c.batch_size)
        names = self._score_names(levels)
        directions = {"both": ("forward", "backward"), "forward": ("forward",), "backward": ("backward",)}[c.directions]
        first = full_matrix(levels[0], a, b, c.block)
        out: dict[str, float] = {}
        if c.rerank is None or len(levels) == 1:
            mats = [first] + [full_matrix(lv, a, b, c.block) for lv in levels[1:]]
            empty_b = [b.empty(lv.gran_b) for lv in levels]
            for direction in directions:
                q_name, t_name = (ta, tb) if direction == "forward" else (tb, ta)
                ms = mats if direction == "forward" else [m.T for m in mats]
                n_q, n_c = ms[0].shape
                # empty molecule side: columns (forward) or rows (backward) of a level's matrix
                if direction == "forward":
                    em = [e.view(1, -1).expand(n_q, n_c) for e in empty_b]
                else:
                    em = [e.view(-1, 1).expand(n_q, n_c) for e in empty_b]
                diag = torch.arange(n_q)
                for name in names:
                    s = self._combined(name, levels, ms, em)
                    for k, v in rank_metrics(ranks_of_positives(s, diag), c.metrics).items():
                        out[f"{name}/{q_name}->{t_name}/{k}"] = v
            return out
        # re-ranking: fine levels only on the top N of the first level, per query
        n = min(c.rerank, b.n, a.n)
        for direction in directions:
            q_name, t_name = (ta, tb) if direction == "forward" else (tb, ta)
            base = first if direction == "forward" else first.T
            top = base.topk(min(n, base.shape[1]), dim=1).indices  # [n_q, N]
            ranks_base = ranks_of_positives(base, torch.arange(base.shape[0]))
            sub = [base.gather(1, top)]
            for lv in levels[1:]:
                rows = []
                for qi in range(base.shape[0]):
                    if direction == "forward":
                        rows.append(score_block(lv, a, b, [qi], top[qi].tolist())[0])
                    else:
                        rows.append(score_block(lv, a, b, top[qi].tolist(), [qi])[:, 0])
                sub.append(torch.stack(rows))
            empty_b = [b.empty(lv.gran_b) for lv in levels]
            if direction == "forward":
                em = [e[top] for e in empty_b]
            else:
                em = [e[torch.arange(base.shape[0])].view(-1, 1).expand_as(top) for e in empty_b]
            gold_in = top == torch.arange(base.shape[0]).view(-1, 1)
            for name in names:
                s = self._combined(name, levels, sub, em)
                pos = torch.where(gold_in.any(1), s.masked_fill(~gold_in, float("-inf")).max(1).values, 0.0)
                within = (s > pos.view(-1, 1)).sum(1) + 1
                ranks = torch.where(gold_in.any(1), within, ranks_base)
                for k, v in rank_metrics(ranks, c.metrics).items():
                    out[f"{name}/{q_name}->{t_name}/{k}"] = v
        return out

    @staticmethod
    def _combined(name: str, levels: list[Level], mats: Sequence[Tensor], empty: Sequence[Tensor]) -> Tensor:
        if name.startswith("level:"):
            return mats[[lv.name for lv in levels].index(name[6:])]
        return combine_levels(mats, [lv.weight for lv in levels], name, empty)
