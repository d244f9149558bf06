"""The sdk conformance kit over every vdr component (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_hf_model_dir")
ITEMS = ["the man is riding a horse", "a dog", "hello world, this is a longer sentence about water"]

CASES = [
    Case(
        "encoder",
        "vdr.vdr-transformer",
        {"model": TINY, "shift": 5},
        tokenizer={"type": "std.hf-tokenizer", "model": TINY, "max_length": 64},
        items=ITEMS,
        bad_configs=[{"shift": -1}, {"shift": 100000}],
    ),
    Case("pooler", "vdr.vocab-max", {"source": "token"}, bad_configs=[{"topk": 0}]),
    Case("pooler", "vdr.vocab-max", {"source": "token", "topk": 5}, id="pooler-vocab-max-topk"),
    Case("pooler", "vdr.vocab-max", {"source": "token", "normalize": True}, id="pooler-vocab-max-normalized"),
    Case("aligner", "vdr.sparse-dot", bad_configs=[{"topk_a": 0}]),
    Case("aligner", "vdr.sparse-dot", {"topk_a": 3, "topk_b": 4}, id="aligner-sparse-dot-topk"),
    Case("loss", "vdr.vdr-nll", {"k": 8, "bow": None}, aligner={"type": "vdr.sparse-dot"},
         bad_configs=[{"k": 0}, {"temperature": 0}]),
    Case("loss", "vdr.vdr-nll", {"k": 4, "bow": None, "semi": True}, aligner={"type": "vdr.sparse-dot"},
         id="loss-vdr-nll-semi"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
