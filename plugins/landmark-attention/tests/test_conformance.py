"""The SDK conformance kit over landmark-lm (landmarks, the no-landmark baseline, top-k retrieval)."""

from __future__ import annotations

from typing import Any

from repmix.sdk.conformance import Case, conformance_cases

BYTES = {"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64}
TEXTS = ["hello world", "a considerably longer sentence about molecules and words", "x", "mid length text"]
CASES = [
    Case("encoder", "landmark-lm", {"n_layer": 2, "n_embd": 16, "n_head": 2, "mem_freq": 4}, tokenizer=BYTES, items=TEXTS,
         bad_configs=[{"n_head": 3}, {"n_embd": 6, "n_head": 2}, {"mem_freq": None, "top_k": 2}, {"mem_freq": 0},
                      {"dropout": 1.0}]),
    Case("encoder", "landmark-lm", {"n_layer": 1, "n_embd": 16, "n_head": 2, "mem_freq": None}, tokenizer=BYTES,
         items=TEXTS, id="encoder-landmark-lm-baseline"),
    Case("encoder", "landmark-lm", {"n_layer": 2, "n_embd": 16, "n_head": 2, "mem_freq": 3, "top_k": 2},
         tokenizer=BYTES, items=TEXTS, id="encoder-landmark-lm-top2"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check: Any) -> None:
    check(case)
