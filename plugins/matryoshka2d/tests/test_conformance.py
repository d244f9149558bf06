"""The sdk conformance kit over every matryoshka2d component (resolved by entry-point name).

The loss runs twice: as plain 1D Matryoshka (``n_layers_per_step: 0``), which the kit's synthetic
inputs fully exercise, and in its 2D default. The kit's synthetic LossInputs carry no towers and
no per-layer states, so the 2D case's forward checks are strict expected failures; the 2D path is
covered on a real (tiny) model by test_loss.py and the faithfulness tests.
"""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a man is riding a horse on the street", "x", "the dog is eating"]
TOKENIZER = {"type": "hf-tokenizer", "model": TINY, "max_length": 32}
NO_LAYERS = "the kit's synthetic LossInputs have no towers and no per-layer states to re-pool"
FORWARD_CHECKS = ("shapes", "signature", "inputs_unmodified", "seed_determinism", "save_load", "gradients")
# The kit wants a gradient at every per-layer input it feeds; this pooler reads one layer by design
# (its gradient to that layer is checked in test_poolers.py).
ONE_LAYER = {"gradients": "reads a single per-layer state by design; the kit expects a gradient at every layer"}

CASES = [
    Case("pooler", "matryoshka2d.truncate", bad_configs=[{"dim": 0}, {"pooling": "median"}], expected_failures=ONE_LAYER),
    Case("pooler", "matryoshka2d.truncate", {"layer": 1, "dim": 8, "pooling": "cls"}, id="pooler-truncate-layer1-d8",
         expected_failures=ONE_LAYER),
    Case("pooler", "matryoshka2d.truncate", {"layer": -2, "pooling": "max", "normalize": False}, id="pooler-truncate-max",
         expected_failures=ONE_LAYER),
    Case("pooler", "matryoshka2d.truncate", {"pooling": "last-token", "dim": 4}, id="pooler-truncate-last-token",
         expected_failures=ONE_LAYER),
    Case(
        "encoder",
        "matryoshka2d.early-exit",
        {"model": TINY, "exit_layer": 2},
        tokenizer=TOKENIZER,
        items=TEXTS,
        bad_configs=[{"exit_layer": 0}, {"exit_layer": 9}, {"model": "/no/such/model"}],
    ),
    Case("encoder", "matryoshka2d.early-exit", {"model": TINY}, tokenizer=TOKENIZER, items=TEXTS, id="encoder-early-exit-full"),
    Case(
        "loss",
        "matryoshka2d",
        {"base": {"type": "mnrl"}, "dims": [16, 8, 4], "n_dims_per_step": -1, "n_layers_per_step": 0},
        bad_configs=[
            {"dims": [16, 16]},
            {"dims": []},
            {"dims": [0]},
            {"dim_weights": [1.0]},
            {"n_dims_per_step": 0},
            {"kl_temperature": -1},
            {"layer_weighting": "inverse"},
            {"base": {"type": "no-such-loss"}},
        ],
        id="loss-matryoshka2d-1d",
    ),
    Case(
        "loss",
        "matryoshka2d",
        {"base": {"type": "info-nce", "temperature": 0.05}, "dims": [16, 8], "dim_weights": [1.0, 0.5],
         "n_layers_per_step": 0},
        id="loss-matryoshka2d-info-nce-1d",
    ),
    Case(
        "loss",
        "matryoshka2d",
        {"base": {"type": "mnrl"}, "dims": [16, 8]},
        id="loss-matryoshka2d-2d",
        expected_failures={check: NO_LAYERS for check in FORWARD_CHECKS},
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
