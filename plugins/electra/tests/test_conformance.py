"""The SDK conformance kits over every electra component (resolved by entry-point name).

Kit limits, declared as strict expected failures (each property is tested on real tiny models in
test_faithful_electra.py instead): ``electra.rtd`` reads a tower's ``rtd_logits`` and the
corruption's ``replaced`` labels, which the kit's synthetic LossInputs (two pooled alignments) do
not have. The corruptor kit builds the generator without a tower encoder, so there it has its own
embeddings (``tie_embeddings: false``) and an explicit size.
"""

from __future__ import annotations

import pytest
from electra_testing import BERT, ELECTRA, TEXTS
from repmix.sdk.conformance import Case, conformance_cases

BYTES = {"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64}
NO_TOWER = "electra.rtd reads rtd_logits and replaced labels of a tower; the kit's LossInputs have none"

CASES = [
    Case("encoder", "electra.discriminator", {"architecture": BERT}, tokenizer=BYTES, items=TEXTS,
         bad_configs=[{"architecture": None}, {"granularities": {"rtd_logits": -1}}, {"granularities": {"token": 9}},
                      {"model": "/no/such/model"}],
         expected_failures={"config_roundtrip": "no default: model or architecture is required"}),
    Case("encoder", "electra.discriminator", {"architecture": ELECTRA, "granularities": {"token": -1, "first": 1}},
         tokenizer=BYTES, items=TEXTS, id="encoder-electra-discriminator-electra-type",
         expected_failures={"config_roundtrip": "no default: model or architecture is required"}),
    Case("loss", "electra.rtd", bad_configs=[{"logits": 3}],
         expected_failures={c: NO_TOWER for c in ("shapes", "signature", "inputs_unmodified", "seed_determinism",
                                                   "save_load", "gradients")}),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("repmix_std", reason="the kit's tokenizer is std.lm-tokenizer")
    check(case)


@pytest.mark.parametrize("config", [
    {"tie_embeddings": False, "hidden_size": 16, "num_hidden_layers": 1, "dropout": 0.0},
    {"tie_embeddings": False, "hidden_size": 16, "num_hidden_layers": 1, "dropout": 0.0, "scheme": "whole-word",
     "rate": 0.4, "mask_prob": 0.8, "random_prob": 0.1},
])
def test_generator_conforms(config: dict) -> None:
    from repmix.sdk.conformance_lm import check_corruptor

    check_corruptor("electra.generator", config)
