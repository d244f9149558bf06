"""The sdk conformance kit over every mltp pooler (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

SMALL = {"latents": 3, "heads": 2, "dim_head": 4, "ff_mult": 2}
# The kit expects a gradient at every per-layer input it feeds; the official design pools layers
# 1..L and ignores the embedding output (layers.0). 'layers: all' below gets the full check.
SKIPS_EMBEDDINGS = {"gradients": "pools layers 1..L by design; the embedding output (layers.0) gets no gradient"}

CASES = [
    Case("pooler", "mltp.multi-layer", SMALL, expected_failures=SKIPS_EMBEDDINGS,
         bad_configs=[{"latents": 0}, {"heads": 0}, {"layers": []}, {"layers": [1, 1]}, {"token": "middle"}]),
    Case("pooler", "mltp.multi-layer", {**SMALL, "layers": "all", "normalize": False}, id="pooler-mltp-all-layers"),
    Case("pooler", "mltp.multi-layer", {**SMALL, "layers": [0, 1, 2], "token": "first"}, id="pooler-mltp-first-token"),
    Case("pooler", "mltp.last-layer", SMALL, bad_configs=[{"dim_head": 0}, {"ff_mult": 0}]),
    Case("pooler", "mltp.last-layer", {**SMALL, "normalize": False}, id="pooler-mltp-last-layer-raw"),
    Case("pooler", "mltp.eos", bad_configs=[{"normalize": "maybe"}]),
    Case("pooler", "mltp.eos", {"normalize": True}, id="pooler-mltp-eos-normalized"),
    Case("pooler", "mltp.token-mean", bad_configs=[{"normalize": "maybe"}]),
    Case("pooler", "mltp.token-mean", {"normalize": True}, id="pooler-mltp-token-mean-normalized"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
