"""The T-test lexicon and maximum matching against hand computations."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from repmix_ernie_gram.lexicon import (
    Lexicon,
    build_lexicon,
    max_match,
    score_ngrams,
    t_statistic,
)

NEW, YORK, THE, CITY, IS, BIG = 1, 2, 3, 4, 5, 6
# "the new york city is big" / "new york is big" / "the city is big" / "the big city" / "new york"
TOY = [[THE, NEW, YORK, CITY, IS, BIG], [NEW, YORK, IS, BIG], [THE, CITY, IS, BIG], [THE, BIG, CITY], [NEW, YORK]]


def test_t_scores_match_a_hand_computation() -> None:
    """N_1 = 19 tokens, N_2 = 14 bigram positions; unigram counts new 3, york 3, the 3, city 3, is 3, big 4."""
    stats = score_ngrams(TOY, 2)
    by_hand = {
        (NEW, YORK): (3 / 14 - (3 / 19) * (3 / 19)) / math.sqrt(3 / 14 / 14),  # 3 times together: 1.530538
        (IS, BIG): (3 / 14 - (3 / 19) * (4 / 19)) / math.sqrt(3 / 14 / 14),  # 1.463367
        (CITY, IS): (2 / 14 - (3 / 19) * (3 / 19)) / math.sqrt(2 / 14 / 14),  # 1.167412
        (THE, CITY): (1 / 14 - (3 / 19) * (3 / 19)) / math.sqrt(1 / 14 / 14),  # 0.650970
        (THE, BIG): (1 / 14 - (3 / 19) * (4 / 19)) / math.sqrt(1 / 14 / 14),  # 0.534626
    }
    assert abs(by_hand[(NEW, YORK)] - 1.530538) < 1e-6
    for gram, t in by_hand.items():
        assert abs(stats[gram].t - t) < 1e-12, gram
    assert stats[(NEW, YORK)].count == 3 and stats[(CITY, IS)].count == 2
    ranked = sorted(stats, key=lambda g: -stats[g].t)
    assert ranked[:3] == [(NEW, YORK), (IS, BIG), (CITY, IS)], "'new york' ranks above the chance bigrams"
    assert sum(s.count for s in stats.values()) == 14


def test_trigram_statistic_and_per_length_top_k() -> None:
    stats = score_ngrams(TOY, 3)
    # trigram positions: 4 + 2 + 2 + 1 + 0 = 9; "new york is" once; "is" 3/19
    t = (1 / 9 - (3 / 19) * (3 / 19) * (3 / 19)) / math.sqrt(1 / 9 / 9)
    assert abs(stats[(NEW, YORK, IS)].t - t) < 1e-12
    assert abs(t_statistic(1, 9, [3, 3, 3], 19) - t) < 1e-12
    lexicon = build_lexicon(stats, {2: 2, 3: 1}, vocab_size=10)
    assert lexicon.ngrams[:2] == [(NEW, YORK), (IS, BIG)]
    assert len(lexicon) == 3 and lexicon.lengths() == {2: 2, 3: 1} and lexicon.max_n == 3
    strict = build_lexicon(stats, {2: 10}, vocab_size=10, min_t=1.2)
    assert strict.ngrams == [(NEW, YORK), (IS, BIG)]


def test_min_count_special_ids_and_word_alignment() -> None:
    assert set(score_ngrams(TOY, 2, min_count=2)) == {(NEW, YORK), (IS, BIG), (CITY, IS)}
    assert (NEW, YORK) not in score_ngrams(TOY, 2, exclude=[NEW])
    # YORK CITY is one word of two tokens (CITY continues it, like a "##" piece): NEW YORK ends inside a
    # word and CITY IS starts inside one, so neither is a candidate; YORK CITY and NEW YORK CITY are
    docs = [[NEW, YORK, CITY, IS], [NEW, YORK, CITY, BIG]]
    starts = [[True, True, False, True], [True, True, False, True]]
    stats = score_ngrams(docs, 3, word_starts=starts)
    assert (YORK, CITY) in stats and (NEW, YORK, CITY) in stats
    assert (NEW, YORK) not in stats and (CITY, IS) not in stats, "n-grams must start and end at word boundaries"


def test_forward_maximum_matching() -> None:
    index = {(1, 2): 0, (1, 2, 3): 1, (3, 4): 2, (2, 3): 3}
    assert max_match([1, 2, 3, 4], index, 3) == [(0, 3)], "the longest match at the left wins"
    assert max_match([5, 1, 2, 4, 3, 4], index, 3) == [(1, 3), (4, 6)]
    assert max_match([2, 3, 4], index, 3) == [(0, 2)], "left to right, no backtracking"
    assert max_match([1, 2, 3, 4], index, 3, allowed=[True, True, False, True]) == [(0, 2)]
    assert max_match([1, 2, 3, 4], index, 3, word_starts=[True, False, False, True]) == [(0, 3)]
    assert max_match([1, 2, 3, 4], index, 3, word_starts=[True, False, True, False]) == [(0, 2), (2, 4)]
    assert max_match([1, 2, 3, 4], index, 3, word_starts=[True, False, False, False]) == [], "one 4-token word"


def test_lexicon_file_roundtrip_and_bad_files(tmp_path: Path) -> None:
    lex = Lexicon([(1, 2), (3, 4, 5)], vocab_size=10, tscores=[2.5, 3.0], counts=[7, 4], texts=["a b", "c d e"])
    lex.save(tmp_path / "lex.json")
    back = Lexicon.load(tmp_path / "lex.json")
    assert back.ngrams == lex.ngrams and back.index == {(1, 2): 0, (3, 4, 5): 1} and back.vocab_size == 10
    assert back.tscores == [2.5, 3.0] and back.texts == ["a b", "c d e"]
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not an ernie-gram lexicon"):
        Lexicon.load(tmp_path / "bad.json")
    (tmp_path / "ids.json").write_text('{"format": "repmix-ernie-gram-lexicon", "vocab_size": 4, "ngrams": [{"ids": [1, 9]}]}')
    with pytest.raises(ValueError, match="below 4"):
        Lexicon.load(tmp_path / "ids.json")
    with pytest.raises(ValueError, match="at least two"):
        Lexicon([(1,)], vocab_size=4)
