"""The sdk conformance kit over the lama pooler (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

CASES = [
    Case("pooler", "lama", bad_configs=[{"heads": 0}, {"output": "sum"}, {"activation": "relu"}]),
    Case("pooler", "lama", {"heads": 3, "output": "mean", "normalize": True}, id="pooler-lama-mean-normalized"),
    Case("pooler", "lama", {"heads": 1, "activation": "none"}, id="pooler-lama-one-linear-head"),
    Case("pooler", "lama.lama", {"heads": 2, "source": "words"}, id="pooler-lama-qualified-other-source"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
