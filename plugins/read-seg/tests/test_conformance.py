"""The sdk conformance kit over the read-seg aligner (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

CASES = [
    Case("aligner", "read-seg", bad_configs=[{"t_neg": 0.9}, {"points": 0}, {"score": "mean"}]),
    Case("aligner", "read-seg", {"score": "logsumexp", "temperature": 0.5}, id="aligner-read-seg-logsumexp"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
