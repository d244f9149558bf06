"""The SDK's conformance kit over the tokenizer (three word rules) and the encoder."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

TEXTS = ["Vitamin D deficiency (p < 0.05) is associated, strongly, with x.", "Hi", "   ", "naïve café"]
SMILES = ["CC(=O)OC(CC(=O)[O-])C[N+](C)(C)C", "C1=CC(Br)=CC=C1Cl", "O"]
TOKENIZER = {"type": "learn-your-tokens.word-bytes", "split": "punctuation", "max_word_bytes": 8, "max_length": 64}
TINY = {"dim": 16, "heads": 2, "layers": 2, "encoder_layers": 1, "decoder_layers": 1, "max_positions": 64,
        "dropout": 0.0}

CASES = [
    Case("tokenizer", "learn-your-tokens.word-bytes", {k: v for k, v in TOKENIZER.items() if k != "type"},
         items=TEXTS, bad_items=["", b"\xff\xfe", 3, []],
         bad_configs=[{"split": "characters"}, {"max_word_bytes": 0}, {"long_words": "drop"}]),
    Case("tokenizer", "learn-your-tokens.word-bytes", {"split": "smiles", "max_word_bytes": 8}, items=SMILES,
         bad_items=[""], id="tokenizer-word-bytes-smiles"),
    Case("encoder", "learn-your-tokens.word-pooled-lm", TINY, tokenizer=TOKENIZER, items=TEXTS,
         bad_configs=[{"dim": 10, "heads": 4}, {"num_prefix": 0}, {"dropout": 1.0}]),
    Case("encoder", "learn-your-tokens.word-pooled-lm", {**TINY, "num_prefix": 3}, tokenizer=TOKENIZER, items=TEXTS,
         id="encoder-word-pooled-lm-prefix3"),
    Case("encoder", "learn-your-tokens.word-pooled-lm", TINY,
         tokenizer={"type": "learn-your-tokens.word-bytes", "split": "smiles", "max_word_bytes": 8, "max_length": 64},
         items=SMILES, id="encoder-word-pooled-lm-smiles"),
]


@conformance_cases(CASES)
def test_conformance(case, check):  # type: ignore[no-untyped-def]
    check(case)
