"""Faithfulness: the paper's sanity checks with reference models of known memory.

* a unigram model (no memory) gives repeat surprisal exactly 100 on repeated lists and ≈ 100 (within
  ±15) on permuted and novel ones;
* a copy oracle (perfect verbatim recall) gives ≪ 100 (< 5) on repeated lists, < 50 on permuted ones
  and ≈ 100 (within ±15) on novel ones;
* the formula on hand-computed surprisals: 100·x2/x1 and (x2 − x1)/(x1 + x2) over positions 2..N.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from repmix.sdk.conformance_lm import LMByteTokenizer
from repmix_repeat_surprisal import (
    CopyOracleLM,
    Scored,
    UnigramLM,
    bootstrap_median_ci,
    make_stimuli,
    score_stimulus,
    summarize,
)


@pytest.fixture(scope="module")
def stimuli() -> list[Any]:
    return make_stimuli(n_lists=8, list_lengths=[3, 5])


@pytest.fixture(scope="module")
def tok() -> LMByteTokenizer:
    return LMByteTokenizer()


def run(lm: Any, tok: Any, stimuli: list[Any]) -> dict[str, float]:
    return summarize([score_stimulus(lm, tok, s) for s in stimuli])


def test_unigram_model_gives_100(stimuli: list[Any], tok: Any) -> None:
    m = run(UnigramLM.from_texts([s.text for s in stimuli], tok), tok, stimuli)
    assert m["repeat/repeat_surprisal"] == pytest.approx(100.0, abs=1e-9)
    assert m["permute/repeat_surprisal"] == pytest.approx(100.0, abs=15)
    assert m["control/repeat_surprisal"] == pytest.approx(100.0, abs=15)


def test_copy_oracle_gives_much_less_than_100_on_repeats_and_100_on_novel_lists(stimuli: list[Any], tok: Any) -> None:
    oracle = CopyOracleLM(UnigramLM.from_texts([s.text for s in stimuli], tok))
    m = run(oracle, tok, stimuli)
    assert m["repeat/repeat_surprisal"] < 5
    assert m["repeat/ci_high"] < 10
    assert m["permute/repeat_surprisal"] < 50
    assert m["control/repeat_surprisal"] == pytest.approx(100.0, abs=15)
    assert m["repeat/x_del"] < -0.9 and abs(m["control/x_del"]) < 0.1


def test_formula_on_hand_computed_surprisals() -> None:
    stim = make_stimuli(n_lists=1, list_lengths=[3], conditions=["repeat"])[0]
    s = Scored(stim, [9.0, 4.0, 6.0], [1.0, 1.0, 2.0], x1=np.mean([4.0, 6.0]), x2=np.mean([1.0, 2.0]))
    assert s.repeat_surprisal == pytest.approx(100 * 1.5 / 5.0)  # 30.0
    assert s.x_del == pytest.approx((1.5 - 5.0) / 6.5)


def test_score_stimulus_sums_token_surprisal_per_noun(tok: Any) -> None:
    stim = make_stimuli(n_lists=1, list_lengths=[3], conditions=["repeat"])[0]
    uni = UnigramLM(torch.ones(260))  # uniform: every byte costs log2(260) bits
    scored = score_stimulus(uni, tok, stim, skip_first=False)
    per_byte = math.log2(260)
    assert scored.surprisal1 == pytest.approx([len(w) * per_byte for w in stim.list1])
    assert scored.x1 == pytest.approx(np.mean([len(w) for w in stim.list1]) * per_byte)
    skipped = score_stimulus(uni, tok, stim)
    assert skipped.x1 == pytest.approx(np.mean([len(w) for w in stim.list1[1:]]) * per_byte)


def test_bootstrap_interval_brackets_the_median() -> None:
    med, lo, hi = bootstrap_median_ci([1, 2, 3, 4, 100], n_boot=500)
    assert med == 3 and lo <= med <= hi
    assert bootstrap_median_ci([5.0] * 4) == (5.0, 5.0, 5.0)
