"""The core's language-modelling hooks with toy components: ``corruption:``, ids granularities,
tower-reading losses (``num_alignments = 0`` + ``check_towers``), ``generate:`` planning."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from repmix.core.assembly import build_model, plan_model
from repmix.core.components import ComponentConfig, Corruptor, Loss, LossInputs, Runtime
from repmix.core.config import LocatedConfig, parse_yaml
from repmix.core.dataflow import EncoderSignature, Granularity, GranularitySpec, LossOutput, TowerView
from repmix.core.errors import PipelineError


class EveryOtherCorruptor(Corruptor):
    """Zeroes every second real id; the targets hold the original ids there (-100 elsewhere)."""

    citation: ClassVar[str] = "test"

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> Any:
        ids, mask = batch["ids"], batch["mask"]
        chosen = mask.clone()
        chosen[:, 0::2] = False
        targets = torch.where(chosen, ids, torch.full_like(ids, -100))
        return {**batch, "ids": ids.masked_fill(chosen, 0)}, {"targets": Granularity(targets, chosen)}


class TargetsLoss(Loss):
    """Reads query.token and query.targets directly (no alignment)."""

    citation: ClassVar[str] = "test"
    num_alignments: ClassVar[int | None] = 0
    seen: ClassVar[list[Mapping[str, TowerView]]] = []

    @classmethod
    def check_towers(cls, config: ComponentConfig, towers: Mapping[str, TowerView]) -> None:
        cls.seen.append(dict(towers))
        spec = towers["query"].granularities.get("targets")
        if spec is None or spec.values != "ids":
            raise PipelineError("targets-loss needs a corruption: block that emits targets")

    def forward(self, inputs: LossInputs) -> LossOutput:
        out = inputs.outputs["query"]
        token, targets = out["token"], out["targets"]
        value = (token.hidden.sum(-1) * targets.mask).sum() / targets.mask.sum().clamp(min=1)
        return LossOutput(value, {"targets": float(targets.mask.sum())})


CONFIG = """\
model:
  towers:
    query:
      tokenizer: {type: chars}
      corruption: {type: every-other}
      encoder: {type: embedding, dim: 8}
  losses:
    - {type: targets-loss}
"""


def _plan(text: str) -> Any:
    data, lines = parse_yaml(text, "c.yaml")
    return plan_model(LocatedConfig(data, lines, "c.yaml"))


def test_corruption_is_planned_and_applied_in_training_only(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("corruptor", "every-other", EveryOtherCorruptor)
    temporary_component("loss", "targets-loss", TargetsLoss)
    TargetsLoss.seen.clear()
    plan = _plan(CONFIG)
    assert plan.towers["query"].granularities["targets"] == GranularitySpec("sequence", None, values="ids")
    views = TargetsLoss.seen[-1]
    assert views["query"].corruptor == "every-other"
    assert views["query"].encoder == EncoderSignature({"token": GranularitySpec("sequence", 8)}, num_layers=2)
    model = build_model(plan)
    assert [c["kind"] for c in model.lock] == ["tokenizer", "encoder", "corruptor", "loss"]
    out = model({"query": ["abcd", "xy"]})
    assert out.loss is not None and out.logs["loss0.TargetsLoss.targets"] == 3.0  # b, d and y
    targets = out.outputs["query"]["targets"]
    assert targets.hidden.dtype == torch.long and targets.shape_kind == "sequence"
    plain = model.encode_batch("query", ["abcd", "xy"])  # inference: no corruption, no targets
    assert "targets" not in plain


def test_tower_reading_loss_is_refused_without_corruption(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("loss", "targets-loss", TargetsLoss)
    with pytest.raises(PipelineError, match="needs a corruption") as err:
        _plan(CONFIG.replace("      corruption: {type: every-other}\n", ""))
    assert err.value.path == "model.losses.0"


def test_corruptor_kind_is_checked(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    from repmix.core.errors import PluginError

    temporary_component("corruptor", "every-other", TargetsLoss)  # registered under the wrong kind
    temporary_component("loss", "targets-loss", TargetsLoss)
    with pytest.raises(PluginError, match="does not subclass repmix.core.Corruptor"):
        _plan(CONFIG)


def test_generate_block_is_validated(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    from repmix.core.components import DecodingStrategy
    from repmix.core.errors import ConfigError
    from repmix.engine.generation import plan_generation

    class First(DecodingStrategy):
        citation: ClassVar[str] = "test"

        def generate(self, lm: Any, prompt: Any, **kw: Any) -> list[int]:
            return [0]

    temporary_component("decoding", "first", First)
    temporary_component("corruptor", "every-other", EveryOtherCorruptor)
    temporary_component("loss", "targets-loss", TargetsLoss)
    text = CONFIG + "generate: {type: first}\n"
    data, lines = parse_yaml(text, "c.yaml")
    cfg = LocatedConfig(data, lines, "c.yaml")
    with pytest.raises(PipelineError, match="needs a causal tower"):
        plan_generation(cfg, plan_model(cfg))
    assert plan_generation(cfg).type_name == "first"
    data["generate"] = {"type": "nope"}
    with pytest.raises(ConfigError, match="unknown decoding"):
        plan_generation(cfg)
