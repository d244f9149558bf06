"""Language-modelling building blocks, one implementation each: masking, replacement, lazy heads.

A masking scheme is a :class:`~repmix.core.components.Corruptor` that chooses positions and
replaces them; the choosing and replacing live here so that every corruptor — std's
``mlm-mask`` and a plugin's (ERNIE-Gram n-grams, LEM entities, ELECTRA's generator) — shares
one tested implementation::

    from repmix.sdk.lm import IGNORE_INDEX, bert_replace, candidate_mask, select_spans

    cand = candidate_mask(batch["input_ids"], batch["attention_mask"], special_ids)
    chosen = select_spans(cand, rate=0.15, generator=g, lengths="ngram", max_length=3)
    ids, targets = bert_replace(batch["input_ids"], chosen, mask_id, vocab_size, generator=g)

Every function draws its random numbers on the CPU (from ``generator`` when given, else from
torch's global RNG) and moves them to the batch's device, so a seed gives the same
corruption on every device. Targets use ``IGNORE_INDEX`` (-100, as transformers does) at
positions that are not predicted.

Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from repmix.core.dataflow import Granularity, TowerView

__all__ = [
    "IGNORE_INDEX",
    "LazyGranularity",
    "bert_replace",
    "candidate_mask",
    "extend_prefix",
    "find_phrases",
    "pick_tower",
    "sample_replacements",
    "scoring_windows",
    "select_phrases",
    "select_spans",
    "select_tokens",
    "select_words",
    "targets_granularity",
    "word_starts_from_ids",
]

#: Target value of a position that is not predicted (transformers' ``ignore_index``).
IGNORE_INDEX = -100


class LazyGranularity(Granularity):
    """A granularity whose ``hidden`` is computed on first access (e.g. vocabulary logits).

    An encoder with an LM head declares ``logits`` but should not pay for a ``[B, N, V]``
    projection when only ``token`` is read (``encode``, retrieval). ``compute`` runs once.
    """

    def __init__(self, compute: Callable[[], Tensor], mask: Tensor | None) -> None:  # noqa: D107
        self._compute: Callable[[], Tensor] | None = compute
        self._hidden: Tensor | None = None
        self.mask = mask

    @property  # type: ignore[override]
    def hidden(self) -> Tensor:
        if self._hidden is None:
            assert self._compute is not None
            self._hidden, self._compute = self._compute(), None
        return self._hidden

    @property
    def computed(self) -> bool:
        """Whether ``hidden`` has been computed already."""
        return self._hidden is not None

    def __repr__(self) -> str:
        return f"LazyGranularity(computed={self.computed})"


def targets_granularity(targets: Tensor) -> Granularity:
    """An ids granularity from targets ``[B, N]`` (``IGNORE_INDEX`` = not predicted)."""
    return Granularity(targets, targets != IGNORE_INDEX)


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(tuple(shape), generator=generator).to(device)


def candidate_mask(ids: Tensor, attention_mask: Tensor | None, special_ids: Iterable[int]) -> Tensor:
    """Positions that may be corrupted: real (attention mask) and not a special token."""
    cand = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool().clone()
    for sid in set(int(s) for s in special_ids):
        cand &= ids != sid
    return cand


def select_tokens(cand: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Each candidate position independently with probability ``rate`` (BERT; transformers' collator)."""
    return (_rand(cand.shape, generator, cand.device) < rate) & cand


def word_starts_from_ids(ids: Tensor, continuation: Tensor) -> Tensor:
    """Word ids ``[B, N]`` from a per-vocabulary flag ``continuation[v]`` (True: token continues a word).

    WordPiece marks continuations with ``##``; a byte-level BPE marks word *starts* (``Ġ``), so
    its continuation flag is the negation. Position 0 always starts a word.
    """
    cont = continuation.to(ids.device)[ids.clamp(min=0)]
    cont[:, 0] = False
    starts = ~cont
    return torch.cumsum(starts.long(), dim=1) - 1


def select_words(
    cand: Tensor, word_ids: Tensor, rate: float, generator: torch.Generator | None = None
) -> Tensor:
    """Whole-word masking: each word (a run of equal ``word_ids``) with probability ``rate``, all its candidates.

    ``word_ids`` ``[B, N]`` number the words of each row (negative = no word, e.g. specials).
    """
    out = torch.zeros_like(cand)
    for b in range(cand.shape[0]):
        w = word_ids[b]
        valid = (w >= 0) & cand[b]
        if not bool(valid.any()):
            continue
        n_words = int(w[valid].max()) + 1
        pick = _rand((n_words,), generator, cand.device) < rate
        out[b] = valid & pick[w.clamp(min=0)]
    return out


def _span_lengths(kind: str, p: float, max_length: int, generator: torch.Generator | None, k: int) -> list[int]:
    if kind == "geometric":  # SpanBERT: Geo(p) clipped to max_length
        u = torch.rand(k, generator=generator).clamp(min=1e-12)
        lens = torch.floor(torch.log(u) / torch.log(torch.tensor(1.0 - p))).long() + 1
        return lens.clamp(max=max_length).tolist()
    # "ngram": n in 1..max_length with probability proportional to 1/n (MacBERT/ERNIE-style n-grams)
    probs = torch.tensor([1.0 / n for n in range(1, max_length + 1)])
    return (torch.multinomial(probs / probs.sum(), k, replacement=True, generator=generator) + 1).tolist()


def select_spans(
    cand: Tensor,
    rate: float,
    generator: torch.Generator | None = None,
    *,
    lengths: Literal["geometric", "ngram"] = "geometric",
    p: float = 0.2,
    max_length: int = 10,
    word_ids: Tensor | None = None,
) -> Tensor:
    """Contiguous spans until ``round(rate * candidates)`` positions of each row are chosen.

    Span lengths (in words when ``word_ids`` is given, else in tokens) follow ``lengths``:
    ``geometric`` (SpanBERT, ``Geo(p)`` clipped to ``max_length``) or ``ngram`` (``n`` in
    ``1..max_length`` with probability ∝ 1/n). Starts are uniform over candidates; a span
    stops at the first non-candidate and never exceeds the budget.
    """
    out = torch.zeros_like(cand)
    for b in range(cand.shape[0]):
        c = cand[b].cpu()
        idx = torch.nonzero(c).flatten().tolist()
        budget = int(round(rate * len(idx)))
        if budget == 0:
            continue
        units: list[list[int]]
        if word_ids is not None:
            w = word_ids[b].cpu().tolist()
            groups: dict[int, list[int]] = {}
            for i in idx:
                if w[i] >= 0:
                    groups.setdefault(w[i], []).append(i)
            units = [groups[k] for k in sorted(groups)]
        else:
            units = [[i] for i in idx]
        chosen = torch.zeros(len(units), dtype=torch.bool)
        taken, tries = 0, 0
        while taken < budget and tries < 10 * len(units) + 10:
            tries += 1
            start = int(torch.randint(len(units), (1,), generator=generator))
            n = _span_lengths(lengths, p, max_length, generator, 1)[0]
            for u in range(start, min(start + n, len(units))):
                if chosen[u]:
                    break
                if word_ids is None and u > start and units[u][0] != units[u - 1][-1] + 1:
                    break  # not contiguous (a special token or padding in between)
                if taken + len(units[u]) > budget:
                    break
                chosen[u] = True
                taken += len(units[u])
        for u in torch.nonzero(chosen).flatten().tolist():
            out[b, units[u]] = True
    return out


def find_phrases(ids: Tensor, phrases: Sequence[Sequence[int]]) -> list[list[tuple[int, int]]]:
    """Occurrences ``(start, end)`` of each token-id phrase in each row (longest first, no overlaps)."""
    found: list[list[tuple[int, int]]] = []
    ordered = sorted((tuple(p) for p in phrases if len(p)), key=len, reverse=True)
    for row in ids.cpu().tolist():
        used = [False] * len(row)
        spans = []
        for ph in ordered:
            n = len(ph)
            for s in range(len(row) - n + 1):
                if tuple(row[s : s + n]) == ph and not any(used[s : s + n]):
                    spans.append((s, s + n))
                    for k in range(s, s + n):
                        used[k] = True
        found.append(sorted(spans))
    return found


def select_phrases(
    cand: Tensor,
    spans: list[list[tuple[int, int]]],
    rate: float,
    generator: torch.Generator | None = None,
    *,
    fill: bool = True,
) -> Tensor:
    """Entity masking: shuffled entity spans first, whole, up to ``round(rate * candidates)``; then
    (``fill``) random single candidates until the budget is met (LEM's global budget)."""
    out = torch.zeros_like(cand)
    for b in range(cand.shape[0]):
        c = cand[b].cpu()
        budget = int(round(rate * int(c.sum())))
        taken = 0
        row = spans[b]
        order = torch.randperm(len(row), generator=generator).tolist() if row else []
        for k in order:
            s, e = row[k]
            if not bool(c[s:e].all()) or taken + (e - s) > budget:
                continue
            out[b, s:e] = True
            taken += e - s
        if fill and taken < budget:
            rest = torch.nonzero(c & ~out[b].cpu()).flatten()
            perm = torch.randperm(len(rest), generator=generator)[: budget - taken]
            out[b, rest[perm].to(out.device)] = True
    return out


def bert_replace(
    ids: Tensor,
    chosen: Tensor,
    mask_id: int,
    vocab_size: int,
    *,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's replacement of chosen positions: ``mask_prob`` -> ``mask_id``, ``random_prob`` -> a
    uniform id in ``[0, vocab_size)``, the rest kept. Returns ``(corrupted ids, targets)``; targets
    hold the original id at chosen positions and ``IGNORE_INDEX`` elsewhere (transformers'
    ``DataCollatorForLanguageModeling`` does the same, with 0.8/0.1/0.1)."""
    u = _rand(ids.shape, generator, ids.device)
    random_ids = torch.randint(vocab_size, tuple(ids.shape), generator=generator).to(ids.device)
    to_mask = chosen & (u < mask_prob)
    to_random = chosen & (u >= mask_prob) & (u < mask_prob + random_prob)
    corrupted = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    return corrupted, targets


def sample_replacements(
    logits: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
) -> Tensor:
    """ELECTRA's sampler: ids drawn from ``softmax(logits / temperature)`` by Gumbel-max, without gradient.

    ``logits`` ``[..., V]`` (a generator's predictions at the masked positions) -> ids ``[...]``.
    The replaced-token label of a position is then ``sampled != original`` (a correct sample is real).
    """
    with torch.no_grad():
        u = torch.rand(tuple(logits.shape), generator=generator).to(logits.device).clamp(1e-9, 1 - 1e-9)
        gumbel = -torch.log(-torch.log(u))
        return torch.argmax(logits.detach().float() / temperature + gumbel, dim=-1)


def scoring_windows(
    tokenizer: object, encoder: object, texts: Sequence[object], context: int | None = None,
) -> tuple[list[list[int]], int]:
    """Cut each document into windows for exact held-out scoring; returns (windows, total UTF-8 bytes).

    Every window starts with the beginning-of-text id (else end-of-text) and holds up to
    ``width - 1`` of the document's ids (``tokenizer.encode_plain``), where ``width`` is the
    smallest of ``context``, the encoder's ``context_length`` and the tokenizer's ``max_length``
    (512 when none is set); consecutive windows do not overlap, so every id is scored once.
    Windows come back sorted by length (batches of similar length pad least).
    """
    from repmix.core.errors import InputError

    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        bos = getattr(tokenizer, "eos_token_id", None)
    if bos is None:
        raise InputError("the tokenizer has no beginning- or end-of-text token to start each window with")
    limits = [v for v in (context, getattr(encoder, "context_length", None), getattr(tokenizer, "max_length", None)) if v]
    width = min(limits) if limits else 512
    if width < 2:
        raise InputError(f"a scoring window must hold at least 2 tokens, got {width}")
    windows: list[list[int]] = []
    n_bytes = 0
    for text in texts:
        if not isinstance(text, str):
            raise InputError(f"expected documents as text, got {type(text).__name__}",
                             hint="evaluate on a text-corpus without block_size")
        n_bytes += len(text.encode("utf-8"))
        ids = tokenizer.encode_plain(text)  # type: ignore[attr-defined]
        windows.extend([bos, *ids[s : s + width - 1]] for s in range(0, len(ids), width - 1))
    windows.sort(key=len)
    return windows, n_bytes


def pick_tower(
    component: str, name: str | None, towers: Mapping[str, TowerView], *,
    provides: str | None = None, corrupted: bool = False, hint: str = "name the tower (tower: text)",
) -> TowerView:
    """The tower a loss reads: the one named, else the only tower that provides ``provides`` (or has a corruption).

    For a loss's ``check_towers``: ``component`` names the loss in the messages; an unknown ``name``
    or no single candidate raises one :class:`~repmix.core.errors.PipelineError` (with ``hint``).
    """
    from repmix.core.errors import PipelineError

    if name is not None:
        if name not in towers:
            raise PipelineError(f"{component} reads tower {name!r}, which is not declared", found=name, allowed=sorted(towers))
        return towers[name]
    if corrupted:
        found, what = [v for v in towers.values() if v.corruptor is not None], "have a corruption"
    else:
        found, what = [v for v in towers.values() if provides in v.granularities], f"provide {provides!r}"
    if len(found) != 1:
        raise PipelineError(f"{component} needs tower: when {len(found)} towers {what}", hint=hint)
    return found[0]


def extend_prefix(ids: Tensor, attention_mask: Tensor | None, cache: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor]:
    """The whole prefix ``(ids, mask)`` of a ``next_logprobs`` call whose cache is the prefix read so far.

    For models that re-read their whole prefix each call (the cache is the prefix itself): a missing
    ``attention_mask`` means every id is real; with a cache the new ids and mask are appended to it.
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(ids)
    if cache is None:
        return ids, attention_mask
    return torch.cat([cache[0], ids], 1), torch.cat([cache[1], attention_mask], 1)
