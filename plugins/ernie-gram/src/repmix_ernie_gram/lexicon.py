"""ERNIE-Gram's n-gram lexicon: corpus n-grams ranked by a T-test, and maximum matching.

**Statistic** (Xiao et al. 2021, n-gram extraction with a T-test; the standard collocation
t-test of Manning & Schütze 1999, §5.3). For an n-gram ``w = w_1 … w_n`` of token ids::

    f(w)   = count(w) / N_n                 (N_n = number of n-gram positions of length n)
    p′(w)  = Π_i count(w_i) / N_1           (the independence hypothesis)
    t(w)   = (f(w) − p′(w)) / sqrt(f(w) / N_n)

n-grams never cross documents. The lexicon ``V_N`` keeps, for each length ``l`` in
``top_k``, the ``top_k[l]`` n-grams with the largest ``t`` among those seen at least
``min_count`` times with ``t ≥ min_t``. With ``whole_words`` only n-grams that start at a word
start and end at a word end (whole words and multi-word phrases, never a word fragment) are
candidates, and their ``min_count`` counts only such occurrences.

**Boundaries**: a sequence is segmented by forward maximum matching (:func:`max_match`): from
left to right, the longest lexicon n-gram starting at the current token is taken, else the
token alone.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "repmix-ernie-gram-lexicon"


@dataclass(frozen=True)
class NgramStat:
    """One scored n-gram: its token ids, corpus count, aligned count and t-statistic."""

    ids: tuple[int, ...]
    count: int
    aligned: int
    t: float


def t_statistic(count: int, n_positions: int, unigram_counts: Sequence[int], n_tokens: int) -> float:
    """``(f − Π f_i) / sqrt(f / N_n)`` with ``f = count / N_n`` and ``f_i = c_i / N_1``."""
    f = count / n_positions
    expected = math.prod(c / n_tokens for c in unigram_counts)
    return (f - expected) / math.sqrt(f / n_positions)


def score_ngrams(
    docs: Iterable[Sequence[int]],
    max_n: int,
    *,
    word_starts: Iterable[Sequence[bool]] | None = None,
    exclude: Iterable[int] = (),
    min_count: int = 1,
) -> dict[tuple[int, ...], NgramStat]:
    """Count every n-gram (2 ≤ n ≤ ``max_n``) of ``docs`` and score those seen ``min_count`` times.

    ``word_starts`` (one flag per token: True where a word starts) restricts candidates to
    word-aligned occurrences (see the module docs); n-grams holding an ``exclude`` id (special
    tokens) are never candidates. Returns n-gram -> :class:`NgramStat`.
    """
    if max_n < 2:
        raise ValueError(f"max_n must be at least 2, got {max_n}")
    unigrams: Counter[int] = Counter()
    counts: Counter[tuple[int, ...]] = Counter()
    aligned: Counter[tuple[int, ...]] = Counter()
    positions = [0] * (max_n + 1)
    banned = {int(i) for i in exclude}
    starts_iter = iter(word_starts) if word_starts is not None else None
    for doc in docs:
        row = [int(i) for i in doc]
        starts = list(next(starts_iter)) if starts_iter is not None else None
        if starts is not None and len(starts) != len(row):
            raise ValueError(f"word_starts has {len(starts)} flags for a document of {len(row)} tokens")
        unigrams.update(row)
        length = len(row)
        for n in range(2, max_n + 1):
            if length < n:
                break
            positions[n] += length - n + 1
            grams = [tuple(row[s : s + n]) for s in range(length - n + 1)]
            counts.update(grams)
            if starts is None:
                aligned.update(grams)
            else:
                aligned.update(g for s, g in enumerate(grams) if starts[s] and (s + n == length or starts[s + n]))
    n_tokens = sum(unigrams.values())
    out: dict[tuple[int, ...], NgramStat] = {}
    for gram, a in aligned.items():
        if a < min_count or banned.intersection(gram):
            continue
        c = counts[gram]
        t = t_statistic(c, positions[len(gram)], [unigrams[i] for i in gram], n_tokens)
        out[gram] = NgramStat(gram, c, a, t)
    return out


@dataclass
class Lexicon:
    """The n-gram vocabulary ``V_N``: n-gram ``k`` has joint id ``vocab_size + k``."""

    ngrams: list[tuple[int, ...]]
    vocab_size: int
    tscores: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ngrams = [tuple(int(i) for i in g) for g in self.ngrams]
        self.index: dict[tuple[int, ...], int] = {g: k for k, g in enumerate(self.ngrams)}
        if len(self.index) != len(self.ngrams):
            raise ValueError("the lexicon holds an n-gram twice")
        if any(len(g) < 2 for g in self.ngrams):
            raise ValueError("every lexicon entry must hold at least two tokens")
        self.max_n = max((len(g) for g in self.ngrams), default=1)

    def __len__(self) -> int:
        return len(self.ngrams)

    def lengths(self) -> dict[int, int]:
        """How many n-grams of each length."""
        return dict(sorted(Counter(len(g) for g in self.ngrams).items()))

    def save(self, path: Path) -> None:
        """Write the lexicon as JSON (atomically)."""
        entries = []
        for k, g in enumerate(self.ngrams):
            e: dict[str, Any] = {"ids": list(g)}
            if k < len(self.tscores):
                e["t"] = self.tscores[k]
            if k < len(self.counts):
                e["count"] = self.counts[k]
            if k < len(self.texts):
                e["text"] = self.texts[k]
            entries.append(e)
        payload = {"format": FORMAT, "version": 1, "vocab_size": self.vocab_size, "ngrams": entries}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=0), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        """Read a lexicon written by :meth:`save`; ``ValueError`` with the reason when it is not one."""
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {str(path)!r} as a lexicon: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not an ernie-gram lexicon (no \"format\": \"{FORMAT}\")")
        entries = payload.get("ngrams")
        vocab = payload.get("vocab_size")
        if not isinstance(entries, list) or not isinstance(vocab, int):
            raise ValueError(f"{str(path)!r}: a lexicon needs 'vocab_size' (an integer) and 'ngrams' (a list)")
        ngrams, tscores, counts, texts = [], [], [], []
        for k, e in enumerate(entries):
            ids = e.get("ids") if isinstance(e, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i < vocab for i in ids):
                raise ValueError(f"{str(path)!r}: entry {k} needs 'ids', a list of token ids below {vocab}")
            ngrams.append(tuple(ids))
            tscores.append(float(e.get("t", float("nan"))))
            counts.append(int(e.get("count", 0)))
            texts.append(str(e.get("text", "")))
        return cls(ngrams, vocab, tscores, counts, texts)


def build_lexicon(
    stats: Mapping[tuple[int, ...], NgramStat],
    top_k: Mapping[int, int],
    vocab_size: int,
    *,
    min_t: float = float("-inf"),
) -> Lexicon:
    """The top ``top_k[n]`` n-grams of each length by t (ties: higher count, then smaller ids), ``t ≥ min_t``."""
    chosen: list[NgramStat] = []
    for n in sorted(top_k):
        pool = [s for g, s in stats.items() if len(g) == n and s.t >= min_t]
        pool.sort(key=lambda s: (-s.t, -s.count, s.ids))
        chosen.extend(pool[: top_k[n]])
    return Lexicon([s.ids for s in chosen], vocab_size, [s.t for s in chosen], [s.count for s in chosen])


def max_match(
    row: Sequence[int],
    index: Mapping[tuple[int, ...], int],
    max_n: int,
    *,
    allowed: Sequence[bool] | None = None,
    word_starts: Sequence[bool] | None = None,
) -> list[tuple[int, int]]:
    """Forward maximum matching: the lexicon n-gram spans ``(start, end)`` of ``row``, left to right.

    At each position the longest n-gram of ``index`` (n ≥ 2) starting there is taken, only over
    ``allowed`` positions (e.g. real, non-special tokens) and, with ``word_starts``, only when it
    starts at a word start and ends at a word end; otherwise the token stays alone.
    """
    length = len(row)
    ok = allowed if allowed is not None else [True] * length
    spans: list[tuple[int, int]] = []
    i = 0
    while i < length:
        taken = 0
        if ok[i] and (word_starts is None or word_starts[i]):
            for n in range(min(max_n, length - i), 1, -1):
                e = i + n
                if not all(ok[i:e]):
                    continue
                if word_starts is not None and e < length and not word_starts[e] and ok[e]:
                    continue
                if tuple(row[i:e]) in index:
                    taken = n
                    break
        if taken:
            spans.append((i, i + taken))
            i += taken
        else:
            i += 1
    return spans
