"""The sdk conformance kit over the binary-pv pooler and aligner (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

CASES = [
    Case("pooler", "binary-pv.binary-code", {"bits": 8},
         bad_configs=[{"bits": 0}, {"noise_std": -1.0}, {"normalize": True}]),
    Case("pooler", "binary-pv.binary-code", {"bits": None, "noise_std": 0.5}, id="pooler-binary-code-noise"),
    Case("aligner", "binary-pv.hamming", bad_configs=[{"score": "cosine"}]),
    Case("aligner", "binary-pv.hamming", {"score": "agreement"}, id="aligner-hamming-agreement"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
