"""The sdk conformance kit over the m2-bert encoder, with std's hf-tokenizer and the kit's ByteTokenizer."""

from __future__ import annotations

from repmix.sdk.conformance import ByteTokenizer, Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a considerably longer query about the model and data and words", "x", "mid length text"]

CASES = [
    Case(
        "encoder",
        "m2-bert",
        {"dim": 16, "layers": 2, "filter_order": 8, "max_length": 64},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[{"dim": 10, "nblocks": 4}, {"filter_emb_dim": 4}, {"layers": 0}, {"max_length": 1}],
    ),
    Case(
        "encoder",
        "m2-bert.m2-bert",
        {"dim": 8, "layers": 1, "nblocks": 2, "filter_order": 4, "bidirectional": False, "residual_long_conv": True,
         "filter_emb_dim": 5, "max_length": 96},
        tokenizer={"type": ByteTokenizer},
        items=TEXTS,
        id="encoder-m2-bert-causal-bytes",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
