"""The sdk conformance kit over the hat tokenizer and encoder."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

TEXTS = ["Hello, world! A longer sentence, withCamelCase and punctuation.", "x", "mid length text here", "naïve café 😀"]
SMALL = {"hidden_size": 16, "heads": 2, "backbone_layers": 1, "byte_hidden_size": 8, "byte_heads": 2,
         "intermediate_size": 24, "byte_intermediate_size": 16}

CASES = [
    Case("tokenizer", "hat-tokenizer", {"max_length": 64}, items=TEXTS, bad_items=[3.5, None],
         bad_configs=[{"max_word_size": 2}, {"words": "chars"}, {"max_length": 1}]),
    Case("encoder", "hat", SMALL, tokenizer={"type": "hat.hat-tokenizer", "max_length": 64}, items=TEXTS,
         bad_configs=[{"hidden_size": 15}, {"backbone_layers": 0}, {"byte_heads": 3}]),
    Case("encoder", "hat.hat", {**SMALL, "window": 4, "decoder_layers": 2},
         tokenizer={"type": "hat.hat-tokenizer", "words": "smiles", "max_length": 64},
         items=["CC(=O)O", "c1ccccc1Br", "[nH+]C"], id="encoder-hat-smiles-window"),
    Case("encoder", "hat", SMALL, tokenizer={"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64},
         items=TEXTS, id="encoder-hat-std-bytes"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
