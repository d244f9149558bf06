"""The sdk conformance kit over the defsent loss.

The kit's loss inputs carry no towers, so the entry matrix cannot be built from the dictionary
there: the forward checks run on a subclass whose entry matrix is installed at construction
(drawn from torch's seeded generator), the static checks on the registered name as well.
"""

from __future__ import annotations

import torch

from repmix.sdk import Runtime
from repmix.sdk.conformance import Case, conformance_cases
from repmix_defsent.loss import DefSentLoss

SMALL = {"dictionary": {"limit": 6}}


class PrebuiltEntries(DefSentLoss):
    """defsent with a random entry matrix (16 wide, the kit's embedding width) installed up front."""

    def __init__(self, config: DefSentLoss.Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.set_entries(torch.randn(self.num_entries, 16, generator=torch.Generator().manual_seed(0)))


FORWARD = ("shapes", "signature", "inputs_unmodified", "seed_determinism", "save_load", "gradients")
NEEDS_TOWERS = {name: "the kit passes no towers to build the entry matrix with (see PrebuiltEntries)" for name in FORWARD}

SECOND_SIDE = {"gradients": "by design DefSent reads only the first side (definitions); the second side "
               "(headwords) gets no gradient (test_faithful_defsent checks the encoder's gradients)"}

CASES = [
    Case("loss", "defsent.defsent", SMALL, expected_failures=NEEDS_TOWERS,
         bad_configs=[{"temperature": 0}, {"rebuild_every": 0}, {"dictionary": {"source": "tsv"}},
                      {"dictionary": {"limit": 1}}]),
    Case("loss", PrebuiltEntries, SMALL, id="loss-defsent-prebuilt", expected_failures=SECOND_SIDE),
    Case("loss", PrebuiltEntries, {**SMALL, "normalize": False, "temperature": 1.0}, id="loss-defsent-prebuilt-dot",
         expected_failures=SECOND_SIDE),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
