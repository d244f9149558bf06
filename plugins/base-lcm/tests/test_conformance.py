"""The sdk conformance kit over base-lcm's tokenizer, encoder and loss wiring (tiny BERT as the sentence encoder)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
DOCS = ["The cat sat. The dog ran. A bird flew.", "One sentence only here.", ["a list", "of sentences"],
        "Acid and base. Water forms."]
TOK = {"type": "lcm-sentences", "model": TINY, "max_length": 16}

CASES = [
    Case("tokenizer", "lcm-sentences", {"model": TINY, "max_length": 16}, items=DOCS, bad_items=["   ", 3, [1, 2]],
         bad_configs=[{"max_sentences": 0}, {"model": "/no/such/model"}]),
    Case("encoder", "base-lcm", {"model_dim": 16, "heads": 2, "ff_dim": 32, "layers": 1, "dropout": 0.0},
         tokenizer=TOK, items=DOCS, bad_configs=[{"heads": 3}, {"clip": 0}, {"dropout": 1.0}]),
    Case("encoder", "base-lcm", {"model_dim": 16, "heads": 2, "ff_dim": 32, "normalizer": False, "dropout": 0.0},
         tokenizer=TOK, items=DOCS, id="encoder-base-lcm-identity"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
