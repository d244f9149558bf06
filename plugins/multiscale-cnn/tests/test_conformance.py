"""The sdk conformance kit over the multi-scale CNN encoder and pooler."""

from __future__ import annotations

from repmix.sdk.conformance import ByteTokenizer, Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a considerably longer query about the model and data and words", "x", "mid length text"]
BAD = [{"kernel_sizes": []}, {"kernel_sizes": [0, 2]}, {"kernel_sizes": [3, 3]}, {"filters": 0}, {"activation": "gelu"}]

CASES = [
    Case(
        "encoder",
        "cnn",
        {"embed_dim": 12, "kernel_sizes": [1, 2, 5], "filters": 4},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[*BAD, {"pooled": "token"}],
    ),
    Case(
        "encoder",
        "multiscale-cnn.cnn",
        {"embed_dim": 6, "kernel_sizes": [3, 4, 5], "filters": 3, "activation": "tanh", "pooled": "doc"},
        tokenizer={"type": ByteTokenizer},
        items=TEXTS,
        id="encoder-cnn-bytes",
    ),
    Case("pooler", "multiscale-cnn.cnn-max", {"kernel_sizes": [2, 3], "filters": 5}, bad_configs=BAD),
    Case("pooler", "cnn-max", {"kernel_sizes": [1, 4, 8], "filters": 2, "normalize": True}, id="pooler-cnn-max-wide"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
