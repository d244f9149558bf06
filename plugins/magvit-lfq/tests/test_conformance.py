"""The sdk conformance kit over lfq-autoencoder (LFQ and VQ) and lfq-loss (resolved by entry-point name)."""

from __future__ import annotations

import numpy as np
from repmix.sdk.conformance import Case, conformance_cases

ITEMS = [np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), np.eye(8, dtype=np.float32), np.zeros((4, 6), np.uint8)]
TOK = {"type": "image-patches", "image_size": 8, "patch_size": 2}

CASES = [
    Case("encoder", "lfq-autoencoder", {"bits": 4, "hidden": 8}, tokenizer=TOK, items=ITEMS,
         bad_configs=[{"bits": 0}, {"quantizer": "fsq"}, {"downsample": 4}]),
    Case("encoder", "lfq-autoencoder", {"quantizer": "vq", "bits": 4, "code_dim": 3, "hidden": 8, "downsample": 2},
         tokenizer=TOK, items=ITEMS, id="encoder-vq-autoencoder",
         expected_failures={"gradients": "the VQ codebook learns only from lfq-loss's codebook term (read from extras); "
                            "the straight-through output skips it, as in VQ-VAE"}),
    Case("loss", "lfq-loss", bad_configs=[{"temperature": 0}, {"entropy_weight": -1}]),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
