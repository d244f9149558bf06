"""Surprisal of the listed nouns under a causal LM, and repeat surprisal.

* Surprisal of a token = −log2 p(token | [BOS] + the text before it), read from one
  ``CausalLM.next_logprobs`` call over the whole stimulus.
* A noun's surprisal is the sum over the tokens that make it up; a token belongs to the noun whose
  byte span holds the token's first non-space byte (a token that also carries the following comma,
  as Metaspace BPE may produce, still counts once, for its noun).
* x1 = mean noun surprisal over L1, x2 = mean over L2 (the official analysis averages positions 2..N,
  ``marker_pos_rel`` in ``range(1, 10)``: ``skip_first``).
* **Repeat surprisal = 100 · x2 / x1** per stimulus (``get_relative_change``'s ``x_perc``); also
  ``x_del = (x2 − x1) / (x1 + x2)``. A condition reports the median over stimuli with a bootstrap
  95 % interval of the median (seaborn's default estimator in the official figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from repmix.sdk import InputError

from repmix_repeat_surprisal.stimuli import Stimulus

LN2 = math.log(2.0)


def token_spans(tok: Any, ids: Sequence[int], text: str) -> list[tuple[int, int]]:
    """Byte span ``[start, end)`` in ``text`` of every token of ``ids`` (= ``tok.encode_plain(text)``).

    Uses ``tok.token_bytes`` when the pieces spell the text (a whitespace prefix the tokenizer adds,
    as Metaspace does, gives the first span a negative start); otherwise the lengths of
    ``tok.decode`` of growing prefixes, which must be prefixes of the text.
    """
    data = text.encode("utf-8")
    if callable(getattr(tok, "token_bytes", None)):
        pieces = [bytes(tok.token_bytes(int(i))) for i in ids]
        joined = b"".join(pieces)
        extra = len(joined) - len(data)
        if extra >= 0 and joined[extra:] == data and joined[:extra].strip() == b"":
            spans, pos = [], -extra
            for p in pieces:
                spans.append((pos, pos + len(p)))
                pos += len(p)
            return spans
    if not callable(getattr(tok, "decode", None)):
        raise InputError("the tokenizer offers neither token_bytes() nor decode(): cannot place tokens in the text")
    spans, prev = [], 0
    for k in range(1, len(ids) + 1):
        prefix = tok.decode(list(ids[:k])).encode("utf-8")
        if not data.startswith(prefix):
            raise InputError(
                "the tokenizer does not reproduce the stimulus text (lossy: lowercasing or unknown characters?)",
                hint="use a lossless tokenizer (bytes, byte-bpe, bpe/unigram without lowercase)",
            )
        spans.append((prev, max(prev, len(prefix))))
        prev = spans[-1][1]
    return spans


def word_surprisals(spans: Sequence[tuple[int, int]], token_bits: Sequence[float], text: str,
                    words: Sequence[tuple[int, int]]) -> list[float]:
    """Surprisal (bits) of each word span: the sum over tokens whose first non-space byte lies in it."""
    data = text.encode("utf-8")
    out = [0.0] * len(words)
    counted = [0] * len(words)
    for (s, e), bits in zip(spans, token_bits):
        first = max(s, 0)
        while first < e and first < len(data) and data[first : first + 1].isspace():
            first += 1
        if first >= e:  # a token of whitespace only belongs to no word
            continue
        for k, (ws, we) in enumerate(words):
            if ws <= first < we:
                out[k] += bits
                counted[k] += 1
                break
    missing = [k for k, c in enumerate(counted) if c == 0]
    if missing:
        raise InputError(f"no token starts inside word {missing[0]} of the list: the tokenizer merges it with the "
                         "text before it")
    return out


@dataclass
class Scored:
    """Per-stimulus result: noun surprisals of both lists, x1, x2, repeat surprisal and x_del."""

    stimulus: Stimulus
    surprisal1: list[float]
    surprisal2: list[float]
    x1: float
    x2: float

    @property
    def repeat_surprisal(self) -> float:
        """100 · x2 / x1."""
        return 100.0 * self.x2 / self.x1 if self.x1 > 0 else float("nan")

    @property
    def x_del(self) -> float:
        """(x2 − x1) / (x1 + x2)."""
        return (self.x2 - self.x1) / (self.x1 + self.x2) if (self.x1 + self.x2) > 0 else float("nan")


def score_stimulus(lm: Any, tok: Any, stimulus: Stimulus, *, skip_first: bool = True) -> Scored:
    """Noun surprisals of ``stimulus`` under ``lm`` (a CausalLM) with ``tok`` (an LM tokenizer)."""
    ids = list(tok.encode_plain(stimulus.text))
    bos = getattr(tok, "bos_token_id", None)
    if bos is None:
        bos = getattr(tok, "eos_token_id", None)
    if bos is None:
        raise InputError("the tokenizer has no beginning- or end-of-text token to start a stimulus with")
    limit = getattr(lm, "context_length", None)
    if limit is not None and len(ids) + 1 > limit:
        raise InputError(
            f"stimulus {stimulus.id!r} is {len(ids) + 1} tokens long; the model attends to {limit} at most",
            hint="use shorter lists (list_lengths) or a shorter intervening text (intervening: [short])",
        )
    device = torch.device("cpu")
    if callable(getattr(lm, "parameters", None)):
        device = next(iter(lm.parameters()), torch.empty(0)).device
    x = torch.tensor([[bos, *ids]], dtype=torch.long, device=device)
    with torch.no_grad():
        logprobs, _ = lm.next_logprobs(x, None)
    lp = logprobs[0, :-1].float().gather(-1, x[0, 1:].unsqueeze(-1)).squeeze(-1)
    bits = (-lp.double() / LN2).cpu().tolist()
    spans = token_spans(tok, ids, stimulus.text)
    s1 = word_surprisals(spans, bits, stimulus.text, stimulus.spans1)
    s2 = word_surprisals(spans, bits, stimulus.text, stimulus.spans2)
    start = 1 if skip_first and len(s1) > 1 else 0
    return Scored(stimulus, s1, s2, float(np.mean(s1[start:])), float(np.mean(s2[start:])))


def bootstrap_median_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 12345,
                        level: float = 0.95) -> tuple[float, float, float]:
    """Median and its percentile-bootstrap interval (seaborn's ``ci=95``, ``seed=12345`` defaults)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = np.median(v[rng.integers(0, v.size, size=(n_boot, v.size))], axis=1)
    lo, hi = np.percentile(boots, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(np.median(v)), float(lo), float(hi)


def summarize(scored: Sequence[Scored], *, n_boot: int = 1000, seed: int = 12345) -> dict[str, float]:
    """Metrics per condition (and per condition and list length when there are several lengths)."""
    metrics: dict[str, float] = {}
    lengths = sorted({s.stimulus.list_len for s in scored})
    groups: dict[str, list[Scored]] = {}
    for s in scored:
        groups.setdefault(s.stimulus.condition, []).append(s)
        if len(lengths) > 1:
            groups.setdefault(f"{s.stimulus.condition}/n{s.stimulus.list_len}", []).append(s)
    for name, items in groups.items():
        med, lo, hi = bootstrap_median_ci([s.repeat_surprisal for s in items], n_boot=n_boot, seed=seed)
        metrics[f"{name}/repeat_surprisal"] = med
        if "/" not in name:
            metrics[f"{name}/ci_low"] = lo
            metrics[f"{name}/ci_high"] = hi
            metrics[f"{name}/x_del"] = float(np.median([s.x_del for s in items]))
            metrics[f"{name}/x1_bits"] = float(np.mean([s.x1 for s in items]))
            metrics[f"{name}/x2_bits"] = float(np.mean([s.x2 for s in items]))
            metrics[f"{name}/stimuli"] = float(len(items))
    return metrics
