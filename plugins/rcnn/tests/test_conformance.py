"""The sdk conformance kit over the rcnn encoder, with std's hf-tokenizer and the kit's ByteTokenizer."""

from __future__ import annotations

from repmix.sdk.conformance import ByteTokenizer, Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a considerably longer query about the model and data and words", "x", "mid length text"]

CASES = [
    Case(
        "encoder",
        "rcnn",
        {"embed_dim": 12, "context_dim": 10, "hidden": 16},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[{"hidden": 0}, {"activation": "gelu"}, {"pooled": "token"}, {"dropout": 1.0}],
    ),
    Case(
        "encoder",
        "rcnn.rcnn",
        {"embed_dim": 6, "context_dim": 4, "hidden": 8, "activation": "relu", "pooled": None},
        tokenizer={"type": ByteTokenizer},
        items=TEXTS,
        id="encoder-rcnn-bytes-token-only",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
