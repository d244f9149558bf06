"""The SDK's conformance kits over both components: the corruptor kit (declaration, shapes,
specials and padding untouched, no in-place edits, seeding) under every schedule and one-hot
mixture, and the main kit's declaration / config checks for the loss.

Kit limit, declared as strict expected failures: the main kit feeds a loss synthetic alignments,
while ``tokenunify.mixture-lm`` reads vocabulary logits and the corruptor's target granularities
of a tower (its forward is tested on a real BERT in test_faithful.py)."""

from __future__ import annotations

import pytest
from repmix.sdk.conformance import Case, conformance_cases
from repmix.sdk.conformance_lm import check_corruptor
from repmix_tokenunify.components import MixtureCorruptor


@pytest.mark.parametrize("config", [
    # alternate: the kit calls forward 7 times, all inside the first phase (the phase sequence: test_faithful.py)
    {}, {"rate": 0.3}, {"mixture": {"random": 1.0}, "rate": 0.3}, {"mixture": {"next": 1.0}},
    {"mixture": {"next_all": 1.0}}, {"schedule": "alternate", "period": 100, "mixture": {"next": 1.0, "next_all": 1.0}}, {"fill": "random"},
    {"mixture": {"random": 0.2, "next_all": 0.8}, "min_prefix": 2},
])
def test_corruptor_conforms(config: dict) -> None:
    check_corruptor(MixtureCorruptor, config)


NEEDS_TOWER = "the kit's LossInputs hold synthetic alignments, not a tower's logits and TokenUnify targets"
CASES = [
    Case("loss", "tokenunify.mixture-lm",
         bad_configs=[{"weights": {"random": 0, "next": 0, "next_all": 0}}, {"weights": {"mlm": 1.0}},
                      {"weights": {"next": -1.0}}],
         expected_failures={c: NEEDS_TOWER for c in ("shapes", "signature", "inputs_unmodified", "seed_determinism",
                                                      "save_load", "gradients")}),
]


@conformance_cases(CASES)
def test_loss_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
