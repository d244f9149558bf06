"""The SDK's conformance kit over the encoder (text words and SMILES words)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

TEXTS = ["Vitamin D deficiency (p < 0.05) is associated, strongly, with x.", "Hi", "   ", "naïve café"]
SMILES = ["CC(=O)OC(CC(=O)[O-])C[N+](C)(C)C", "C1=CC(Br)=CC=C1Cl", "O"]
TINY = {"dim": 16, "heads": 2, "layers": 2, "decoder_layers": 1, "byte_dim": 8, "latents": 2, "embed_heads": 2,
        "embed_mlp_ratio": 2, "max_positions": 64, "dropout": 0.0}

CASES = [
    Case("encoder", "byte2word.byte2word-lm", TINY,
         tokenizer={"type": "learn-your-tokens.word-bytes", "split": "punctuation", "max_word_bytes": 8,
                    "max_length": 64},
         items=TEXTS, bad_configs=[{"dim": 10, "heads": 4}, {"byte_dim": 10, "embed_heads": 4}, {"latents": 0}]),
    Case("encoder", "byte2word.byte2word-lm", TINY,
         tokenizer={"type": "learn-your-tokens.word-bytes", "split": "smiles", "max_word_bytes": 8, "max_length": 64},
         items=SMILES, id="encoder-byte2word-lm-smiles"),
]


@conformance_cases(CASES)
def test_conformance(case, check):  # type: ignore[no-untyped-def]
    check(case)
