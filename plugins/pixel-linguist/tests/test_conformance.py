"""The sdk conformance kit over render-text and pixel-vit (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

ITEMS = ["A man is playing a flute.", "CC(=O)Oc1ccccc1C(=O)O", "Hi"]
TOK = {"type": "render-text", "max_patches": 24}

CASES = [
    Case("tokenizer", "render-text", TOK and {"max_patches": 24}, items=ITEMS, bad_items=["", "   ", 3, None],
         bad_configs=[{"font_size": 40}, {"max_patches": 0}]),
    Case("encoder", "pixel-vit", {"hidden_size": 16, "heads": 2}, tokenizer=TOK, items=ITEMS, bad_configs=[{"heads": 3}]),
    Case("pooler", "mean", {"source": "token"}, id="pooler-mean-over-pixel-tokens"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
