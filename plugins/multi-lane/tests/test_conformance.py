"""The sdk conformance kit over the multi-lane encoder (resolved by entry-point name)."""

from __future__ import annotations

import numpy as np
from repmix.sdk.conformance import Case, conformance_cases

ITEMS = [np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), np.eye(8, dtype=np.float32), np.zeros((4, 6), np.uint8)]
TOK = {"type": "image-patches", "image_size": 8, "patch_size": 2}

CASES = [
    Case("encoder", "multi-lane", {"hidden_size": 16, "heads": 2, "tasks": 2, "selectors": 3, "prompts": 2},
         tokenizer=TOK, items=ITEMS, bad_configs=[{"heads": 3}, {"prompt_layers": 5}, {"selectors": 0}]),
    Case("encoder", "multi-lane", {"hidden_size": 16, "heads": 2, "tasks": 1, "prompts": 0, "backbone_trainable": True,
                                   "projection_dim": 8}, tokenizer=TOK, items=ITEMS, id="encoder-multi-lane-trainable"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
