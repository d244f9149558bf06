"""The sdk conformance kit over seed-tokenizer and seed-vq-loss (resolved by entry-point name)."""

from __future__ import annotations

import numpy as np
from repmix.sdk.conformance import Case, conformance_cases

ITEMS = [np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), np.eye(8, dtype=np.float32), np.zeros((4, 6), np.uint8)]
TOK = {"type": "image-patches", "image_size": 8, "patch_size": 2}
CODEBOOK = {"gradients": "the codebook learns only from seed-vq-loss's VQ term (read from extras); the "
            "straight-through output skips it, as in VQ-VAE / VectorQuantizer2"}

CASES = [
    Case("encoder", "seed-tokenizer", {"hidden_size": 16, "heads": 2, "queries": 4, "code_dim": 4, "codebook_size": 16},
         tokenizer=TOK, items=ITEMS, bad_configs=[{"heads": 3}, {"codebook_size": 1}], expected_failures=CODEBOOK),
    Case("encoder", "seed-tokenizer", {"hidden_size": 16, "heads": 4, "queries": 3, "projection_dim": 8,
                                       "backbone_trainable": False, "decoder_layers": 1},
         tokenizer=TOK, items=ITEMS, id="encoder-seed-frozen-vit", expected_failures=CODEBOOK),
    Case("loss", "seed-vq-loss", bad_configs=[{"beta": -1}]),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
