"""The sdk conformance kit over the dse pooler, aligner and loss (synthetic inputs)."""

from __future__ import annotations

import torch
from repmix.sdk.conformance import Case, conformance_cases

#: (y, z) per pair, as dse.distill-pairs provides them.
TARGETS = torch.tensor([[0.9, 0.8], [0.1, 0.3], [0.5, 0.4], [0.0, -0.2]])

CASES = [
    Case("pooler", "dse.top-layers-mean", {"layers": 3}, num_layers=3, bad_configs=[{"layers": 0}]),
    Case(
        "pooler",
        "dse.top-layers-mean",
        {"layers": 4, "normalize": True, "skip_first": False},
        num_layers=4,
        id="pooler-top-layers-mean-4-normalized",
    ),
    Case(
        "pooler",
        "dse.top-layers-mean",
        {"layers": 2},
        num_layers=4,
        id="pooler-top-layers-mean-top-2-of-4",
        expected_failures={
            "gradients": "by design only the top 2 of the 4 per-layer states are read, so no gradient reaches "
            "layers 0 and 1 (the kit requires one on every per-layer input)"
        },
    ),
    Case("aligner", "dse.pair-head", {"hidden": 8}, bad_configs=[{"hidden": 0}, {"dropout": 1.0}]),
    Case("aligner", "dse.pair-head", {"hidden": 8, "chunk_pairs": 3}, id="aligner-pair-head-chunked"),
    Case(
        "loss",
        "dse.dse-distill",
        {"alpha": 0.5},
        targets=TARGETS,
        bad_configs=[{"alpha": 1.5}, {"alpha": -0.1}, {"task": "ce"}],
    ),
    Case(
        "loss",
        "dse.dse-distill",
        {"alpha": 1.0, "task": "none"},
        targets=torch.tensor([0.2, -0.1, 0.7, 0.0]),
        id="loss-dse-distill-teacher-only",
    ),
    Case(
        "loss",
        "dse.dse-distill",
        {"task": "bce"},
        targets=torch.tensor([[1.0, 2.0], [0.0, -1.0], [1.0, 0.5], [0.0, -3.0]]),
        id="loss-dse-distill-binary",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
