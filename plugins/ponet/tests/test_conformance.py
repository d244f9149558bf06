"""The sdk conformance kit over the ponet encoder, with std's hf-tokenizer and the kit's ByteTokenizer."""

from __future__ import annotations

from repmix.sdk.conformance import ByteTokenizer, Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a considerably longer query about the model and data and words", "x", "mid length text"]

CASES = [
    Case(
        "encoder",
        "ponet",
        {"dim": 16, "heads": 4, "segments": 3, "max_length": 64},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[{"dim": 10, "heads": 4}, {"kernel": 4}, {"segments": 0}, {"layers": 0}],
    ),
    Case(
        "encoder",
        "ponet.ponet",
        {"dim": 8, "heads": 2, "layers": 1, "segments": 1, "kernel": 5, "ffn": 12},
        tokenizer={"type": ByteTokenizer},
        items=TEXTS,
        id="encoder-ponet-bytes",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
