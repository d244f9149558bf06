"""The SDK conformance kits over ernie-gram's corruptor and loss.

Kit limits: ``check_corruptor`` compares the corrupted ids with the input position by position,
which holds only for corruptions that keep every position; a collapsed n-gram shifts the rest of its
row left. The kit therefore runs with a lexicon that never matches its texts (the single-token path:
budget, BERT replacement, untouched specials, seeding); the collapse is checked on its own in
test_faithful_ernie_gram.py (length identity, un-collapsing round trip, specials keep their place).
``ernie-gram.ngram-mlm`` reads a tower's logits, hidden states and the corruption's n-gram head,
which the kit's synthetic LossInputs (pooled alignments) do not have.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from repmix.sdk.conformance import Case, conformance_cases
from repmix_ernie_gram.lexicon import Lexicon

NO_TOWER = "ernie-gram.ngram-mlm reads a tower's logits, states and n-gram head; the kit's LossInputs have none"
CASES = [
    Case("loss", "ernie-gram.ngram-mlm", bad_configs=[{"hidden": 3}],
         expected_failures={c: NO_TOWER for c in ("shapes", "signature", "inputs_unmodified", "seed_determinism",
                                                   "save_load", "gradients")}),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)


@pytest.mark.parametrize("options", [{}, {"selection": "ngrams-first", "whole_words": False, "rate": 0.4}])
def test_ngram_mask_conforms(tmp_path: Path, options: dict) -> None:
    from repmix.sdk.conformance_lm import check_corruptor

    path = tmp_path / "lexicon.json"
    Lexicon([tuple(b"zq"), tuple(b"qzx")], vocab_size=260).save(path)  # the kit's byte vocabulary
    check_corruptor("ernie-gram.ngram-mask", {"file": str(path), **options})
