"""The sdk conformance kit over the pitome encoder (tiny random BERT) and the size-mean pooler."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = [
    "the man is riding a horse in the park",
    "a woman is eating food with a child and a dog",
    "hello world",
    "the red car and the blue train are in the city",
]

CASES = [
    Case(
        "encoder",
        "pitome",
        {"model": TINY, "merge_ratio": 0.25, "merge_layers": [0, 1]},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[{"merge_ratio": 0.6}, {"merge_ratio": -0.1}, {"merge_layers": [5]}, {"margin": 1.0},
                     {"merge_layers": [1, 1]}, {"model": "/no/such/model"}],
    ),
    Case(
        "encoder",
        "pitome.pitome",
        {"model": TINY, "merge_ratio": 0.5, "merge_layers": [-1], "margin": 0.5, "proportional_attention": False},
        tokenizer={"type": "hf-tokenizer", "model": TINY, "max_length": 32},
        items=TEXTS,
        id="encoder-pitome-half-last-layer",
    ),
    Case("pooler", "pitome.size-mean"),
    Case("pooler", "size-mean", {"normalize": True}, id="pooler-size-mean-normalized"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
