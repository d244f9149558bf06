"""AssembledModel: the training forward asks encoders for per-layer states only where a loss needs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from toys import TOY_CONFIG

from repmix.core.assembly import build_model, plan_model
from repmix.core.config import LocatedConfig, parse_yaml

PAIRS = {"query": ["a short one", "another"], "document": ["short", "other one"]}


def toy_model(loss: str):  # type: ignore[no-untyped-def]
    text = TOY_CONFIG.replace("{type: contrastive, on: sim", "{type: " + loss + ", on: sim", 1)
    assert loss in text
    return build_model(plan_model(LocatedConfig(*parse_yaml(text, "toy.yaml"), "toy.yaml")))


def test_a_loss_that_needs_layers_gets_them_in_the_training_forward(toy_plugin: Path) -> None:
    model = toy_model("layer-contrastive")
    assert model.encode_batch("query", PAIRS["query"]).layers is None  # no pooler needs them
    out = model(PAIRS)
    assert out.outputs["query"].layers is not None and out.outputs["document"].layers is not None
    assert float(out.loss) > 0


def test_other_losses_do_not_pay_for_layers(toy_plugin: Path) -> None:
    out = toy_model("contrastive")(PAIRS)
    assert out.outputs["query"].layers is None


def test_without_the_flag_the_layer_loss_fails(toy_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = toy_model("layer-contrastive")
    monkeypatch.setattr(model.losses[0], "needs_layers", False)
    with pytest.raises(AssertionError, match="no per-layer states"):
        model(PAIRS)
