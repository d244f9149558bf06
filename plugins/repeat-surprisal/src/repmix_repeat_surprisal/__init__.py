"""Verbatim short-term memory of causal LMs (Armeni, Honey & Linzen, CoNLL 2022) for repmix.

Components: ``noun-lists`` (dataset) and ``repeat-surprisal`` (evaluator). Building blocks:
:func:`~repmix_repeat_surprisal.stimuli.make_stimuli`, :func:`~repmix_repeat_surprisal.scoring.score_stimulus`,
:func:`~repmix_repeat_surprisal.scoring.summarize`, and the reference models
:class:`~repmix_repeat_surprisal.reference.UnigramLM` / :class:`~repmix_repeat_surprisal.reference.CopyOracleLM`.
"""

from repmix_repeat_surprisal.reference import CopyOracleLM, UnigramLM
from repmix_repeat_surprisal.scoring import (
    Scored,
    bootstrap_median_ci,
    score_stimulus,
    summarize,
    token_spans,
)
from repmix_repeat_surprisal.stimuli import (
    CONDITIONS,
    INTERVENING,
    NOUNS,
    PREFACE,
    PROMPT,
    Stimulus,
    assemble,
    make_stimuli,
)

__all__ = [
    "CONDITIONS",
    "INTERVENING",
    "NOUNS",
    "PREFACE",
    "PROMPT",
    "CopyOracleLM",
    "Scored",
    "Stimulus",
    "UnigramLM",
    "assemble",
    "bootstrap_median_ci",
    "make_stimuli",
    "score_stimulus",
    "summarize",
    "token_spans",
]
