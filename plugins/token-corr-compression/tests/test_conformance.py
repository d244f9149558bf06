"""The sdk conformance kit over token-corr-vit (resolved by entry-point name), in each selection mode."""

from __future__ import annotations

import numpy as np
from repmix.sdk.conformance import Case, conformance_cases

ITEMS = [np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), np.eye(8, dtype=np.float32), np.full((8, 8), 0.5, np.float32)]
TOK = {"type": "image-patches", "image_size": 8, "patch_size": 2}
SMALL = {"hidden_size": 16, "heads": 2, "layers": 3, "select_after": 1}

CASES = [
    Case("encoder", "token-corr-vit", SMALL, tokenizer=TOK, items=ITEMS,
         bad_configs=[{"select_after": 3}, {"heads": 3}, {"shallow_layer": 2}, {"threshold": 2.0}]),
    Case("encoder", "token-corr-vit", {**SMALL, "budget": "fixed", "keep_ratio": 0.25, "merge": False}, tokenizer=TOK,
         items=ITEMS, id="encoder-token-corr-vit-fixed"),
    Case("encoder", "token-corr-vit", {**SMALL, "selection": "random"}, tokenizer=TOK, items=ITEMS,
         id="encoder-token-corr-vit-random"),
    Case("encoder", "token-corr-vit", {**SMALL, "selection": "none"}, tokenizer=TOK, items=ITEMS,
         id="encoder-token-corr-vit-none"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
