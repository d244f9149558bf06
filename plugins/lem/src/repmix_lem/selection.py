"""LEM's selection: one random subword per entity / verb / noun word, within a global budget.

This is the masking decision of Fernando & Ranathunga's ``DataCollatorForWholeWordMaskCustomized
._whole_word_mask`` (official code, ``sa_train_MLM_with_ne_verb_noun_v7_*.py``), written from its
description, without the XLM-R specifics:

1. the candidate words of a row (subword positions grouped by the tokenizer's ``word_ids``) are
   shuffled;
2. per-type budgets ``n_type = max(1, round(p_type · subword tokens of that type))`` for named
   entities, verbs and nouns (0 when ``p_type`` is 0 or the row has no word of the type);
3. a global budget ``max(1, round(rate · candidate tokens))``;
4. *entity pass*: walking the shuffled words, a word of a type whose budget is not exhausted
   (checked in the order entity, verb, noun) gets **one random subword** masked and is marked
   covered, until the global budget is met;
5. *fill pass* (``fill``): the shuffled words that are not covered get one random subword each
   until the global budget is met.

Every random number comes from the ``generator`` passed in (CPU), so a seed fixes the choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["ENTITY", "NOUN", "VERB", "group_words", "lem_select", "lem_select_batch"]

#: Word-class flags (a word may carry several: a named entity that is also a proper noun).
ENTITY, VERB, NOUN = 1, 2, 4
_ORDER = (ENTITY, VERB, NOUN)  # the official elif chain: named entity, then verb, then noun


def group_words(cand: Tensor, word_ids: Tensor) -> list[list[list[int]]]:
    """Per row, the candidate positions of each word, in order: ``[[positions of word 0], ...]``.

    A word is a run of equal non-negative ``word_ids`` restricted to candidate positions (real,
    non-special tokens); a special token or padding in between ends a word.
    """
    out: list[list[list[int]]] = []
    cand_l = cand.cpu().tolist()
    words_l = word_ids.cpu().tolist()
    for c_row, w_row in zip(cand_l, words_l, strict=True):
        words: list[list[int]] = []
        prev = None
        for pos, (c, w) in enumerate(zip(c_row, w_row, strict=True)):
            if not c or w < 0:
                prev = None
                continue
            if w == prev and words:
                words[-1].append(pos)
            else:
                words.append([pos])
            prev = w
        out.append(words)
    return out


def _one_subword(word: Sequence[int], generator: torch.Generator | None) -> int:
    if len(word) == 1:
        return word[0]
    return word[int(torch.randint(len(word), (1,), generator=generator))]


def lem_select(
    words: Sequence[Sequence[int]],
    classes: Sequence[int],
    n_candidates: int,
    *,
    rate: float,
    p_entity: float,
    p_verb: float,
    p_noun: float,
    fill: bool,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Positions to mask in one row (see the module docs); ``classes[i]`` are word ``i``'s flags.

    Exactly one subword of each selected word is returned, never more positions than the global
    budget ``max(1, round(rate · n_candidates))`` (0 for a row without candidates).
    """
    if len(words) != len(classes):
        raise ValueError(f"{len(words)} words but {len(classes)} word classes")
    if n_candidates <= 0 or not words:
        return []
    budget = max(1, int(round(rate * n_candidates)))
    probs = {ENTITY: p_entity, VERB: p_verb, NOUN: p_noun}
    per_type: dict[int, int] = {}
    for flag, p in probs.items():
        tokens = sum(len(w) for w, c in zip(words, classes, strict=True) if c & flag)
        per_type[flag] = max(1, int(round(tokens * p))) if p > 0 and tokens > 0 else 0
    order = torch.randperm(len(words), generator=generator).tolist()
    chosen: list[int] = []
    covered = [False] * len(words)
    count = dict.fromkeys(_ORDER, 0)
    for w in order:
        if len(chosen) >= budget:
            break
        for flag in _ORDER:
            if classes[w] & flag and count[flag] < per_type[flag]:
                count[flag] += 1
                chosen.append(_one_subword(words[w], generator))
                covered[w] = True
                break
    if fill:
        for w in order:
            if len(chosen) >= budget:
                break
            if not covered[w]:
                chosen.append(_one_subword(words[w], generator))
                covered[w] = True
    return chosen


def lem_select_batch(
    cand: Tensor,
    words: Sequence[Sequence[Sequence[int]]],
    classes: Sequence[Sequence[int]],
    *,
    rate: float,
    p_entity: float,
    p_verb: float,
    p_noun: float,
    fill: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """:func:`lem_select` on every row: a bool ``[B, N]`` of chosen positions (on ``cand``'s device)."""
    chosen = torch.zeros(cand.shape, dtype=torch.bool)
    n_cand = cand.sum(dim=1).cpu().tolist()
    for b, (row_words, row_classes) in enumerate(zip(words, classes, strict=True)):
        picks = lem_select(row_words, row_classes, int(n_cand[b]), rate=rate, p_entity=p_entity,
                           p_verb=p_verb, p_noun=p_noun, fill=fill, generator=generator)
        if picks:
            chosen[b, picks] = True
    return chosen.to(cand.device)
