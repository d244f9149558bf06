"""LEM's selection rule against the invariants the paper and its official code state.

Reference: the masking loop of ``DataCollatorForWholeWordMaskCustomized._whole_word_mask`` in
``aloka-fernando/Linguistic-Entity-Masking-LEM`` (``sa_train_MLM_with_ne_verb_noun_v7_*.py``),
spec shared/papers/poolers-aligners-losses.md §14: exactly one masked subword per selected word;
the global budget round(0.15 · tokens) (at least 1); per-type budgets max(1, round(p · tokens of
the type)); entity words before random ones; with the fill pass off only entity words are masked.
All checks are exact (integer counts), the uniformity check within 5 standard deviations.
"""

from __future__ import annotations

import pytest
import torch
from repmix_lem.selection import ENTITY, NOUN, VERB, group_words, lem_select, lem_select_batch


def _row(n_words: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Words of 1-3 subwords laid out from position 1, with random classes."""
    g = torch.Generator().manual_seed(seed)
    words, pos = [], 1
    for _ in range(n_words):
        k = int(torch.randint(1, 4, (1,), generator=g))
        words.append(list(range(pos, pos + k)))
        pos += k
    classes = torch.randint(0, 8, (n_words,), generator=g).tolist()
    return words, classes


def _select(words, classes, n_cand=None, **kw):
    opts = {"rate": 0.15, "p_entity": 1.0, "p_verb": 1.0, "p_noun": 1.0, "fill": True}
    opts.update(kw)
    n = sum(len(w) for w in words) if n_cand is None else n_cand
    return lem_select(words, classes, n, **opts)


def _word_of(words):
    return {p: i for i, w in enumerate(words) for p in w}


@pytest.mark.parametrize("seed", range(40))
def test_one_subword_per_word_and_global_budget(seed: int) -> None:
    words, classes = _row(60, seed)
    n = sum(len(w) for w in words)
    picks = _select(words, classes, generator=torch.Generator().manual_seed(seed))
    owner = _word_of(words)
    hit = [owner[p] for p in picks]
    assert len(hit) == len(set(hit)), "a word got more than one masked subword"
    assert len(picks) == max(1, round(0.15 * n))  # enough words: the budget is met exactly


def test_entity_words_first() -> None:
    # 40 words, the first 20 are named entities (2 subwords each): budget round(0.15*60) = 9 < 20
    words = [[2 * i, 2 * i + 1] for i in range(20)] + [[40 + i] for i in range(20)]
    classes = [ENTITY] * 20 + [0] * 20
    for seed in range(20):
        picks = _select(words, classes, generator=torch.Generator().manual_seed(seed))
        assert len(picks) == 9 and all(p < 40 for p in picks)


def test_fill_off_masks_only_entity_words() -> None:
    for seed in range(30):
        words, classes = _row(50, seed)
        picks = _select(words, classes, fill=False, generator=torch.Generator().manual_seed(seed))
        owner = _word_of(words)
        assert all(classes[owner[p]] != 0 for p in picks)


def test_per_type_budgets() -> None:
    # entity words hold 10 subword tokens; p_entity 0.2 -> n_entity = 2; verbs off; fill off
    words = [[i] for i in range(10)] + [[10 + i] for i in range(30)]
    classes = [ENTITY] * 10 + [NOUN] * 30
    for seed in range(10):
        picks = _select(words, classes, rate=0.5, p_entity=0.2, p_verb=0.0, p_noun=0.1, fill=False,
                        generator=torch.Generator().manual_seed(seed))
        ent = [p for p in picks if p < 10]
        noun = [p for p in picks if p >= 10]
        assert len(ent) == 2 and len(noun) == 3  # max(1, round(0.2*10)), max(1, round(0.1*30))
    # a tiny rate still gives the type at least 1, and the global budget at least 1
    picks = _select([[0], [1]], [VERB, 0], rate=0.01, generator=torch.Generator().manual_seed(0))
    assert picks == [0]


def test_word_of_several_types_counts_once() -> None:
    # an entity that is also a noun: with the entity budget spent it may still count as a noun
    words = [[0], [1], [2]]
    classes = [ENTITY | NOUN, ENTITY | NOUN, 0]
    for seed in range(10):
        picks = _select(words, classes, rate=0.99, p_entity=0.5, p_noun=0.5, fill=False,
                        generator=torch.Generator().manual_seed(seed))
        assert sorted(picks) == [0, 1]


def test_subword_choice_is_uniform() -> None:
    words, classes = [[5, 6, 7]], [ENTITY]
    counts = [0, 0, 0]
    g = torch.Generator().manual_seed(0)
    trials = 3000
    for _ in range(trials):
        (p,) = _select(words, classes, generator=g)
        counts[p - 5] += 1
    sd = (trials * (1 / 3) * (2 / 3)) ** 0.5
    assert all(abs(c - trials / 3) < 5 * sd for c in counts)


def test_empty_rows_and_errors() -> None:
    assert _select([], [], n_cand=0) == []
    with pytest.raises(ValueError, match="word classes"):
        lem_select([[0]], [], 1, rate=0.15, p_entity=1, p_verb=1, p_noun=1, fill=True)


def test_group_words_and_batch() -> None:
    cand = torch.tensor([[False, True, True, True, False, True, True, False]])
    word_ids = torch.tensor([[-1, 0, 0, 1, -1, 2, 2, -1]])
    assert group_words(cand, word_ids) == [[[1, 2], [3], [5, 6]]]
    # the same word id on both sides of a special token makes two words
    assert group_words(torch.tensor([[True, False, True]]), torch.tensor([[0, -1, 0]])) == [[[0], [2]]]
    chosen = lem_select_batch(cand, group_words(cand, word_ids), [[ENTITY, 0, 0]], rate=0.2, p_entity=1,
                              p_verb=1, p_noun=1, fill=True, generator=torch.Generator().manual_seed(0))
    assert chosen.dtype == torch.bool and int(chosen.sum()) == 1 and bool(chosen[0, 1:3].any())


def test_seeded() -> None:
    words, classes = _row(80, 3)
    a = _select(words, classes, generator=torch.Generator().manual_seed(7))
    b = _select(words, classes, generator=torch.Generator().manual_seed(7))
    c = _select(words, classes, generator=torch.Generator().manual_seed(8))
    assert a == b and a != c
