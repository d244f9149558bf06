"""The sdk conformance kit over the babelbert pooler and loss (resolved by entry-point name)."""

from __future__ import annotations

import torch

from repmix.sdk.conformance import Case, conformance_cases

CASES = [
    Case("pooler", "babelbert.word-mean", bad_configs=[{"skip_first": -1}]),
    Case("pooler", "babelbert.word-mean", {"skip_first": 0, "skip_last": 0, "normalize": True},
         id="pooler-word-mean-all-normalized"),
    Case("loss", "babelbert.nt-xent", bad_configs=[{"temperature": 0}]),
    Case("loss", "babelbert.nt-xent", {"temperature": 0.5}, targets=torch.tensor([0.0, 1.0, 0.0, 2.0]),
         id="loss-nt-xent-labels"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
