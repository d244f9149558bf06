"""Faithfulness tests of ``orma.info-nce-exp`` and of ORMA's three-level objective.

References: explicit-loop cross-entropies and an explicit-loop transcription of
ORMA's forward pass (tests/orma_loops.py), and std's ``info-nce`` at the
equivalent fixed temperature.
"""

from __future__ import annotations

import math

import orma_loops as loops
import pytest
import torch
from repmix.sdk import (
    Alignment,
    AssembledModel,
    Encoded,
    Granularity,
    InputError,
    LossInputs,
    Runtime,
    load_component_class,
)
from repmix.sdk.conformance import Case, conformance_cases
from repmix_orma.fine_grained import WeightedPoolingAligner
from repmix_orma.losses import ExpTemperatureInfoNCE
from repmix_orma.ot import OTMultiTokenAligner

WEIGHTS = {"global": 0.5, "mid": 0.3, "local": 0.2}


def loss(**config: object) -> ExpTemperatureInfoNCE:
    """The loss with its parameter in float64 (the tests compare to float64 loops)."""
    return ExpTemperatureInfoNCE(ExpTemperatureInfoNCE.Config(**config), Runtime()).double()


def on(scores: torch.Tensor) -> LossInputs:
    return LossInputs({"level": Alignment(scores)}, {})


def test_loss_equals_hand_computation_with_exp_temp() -> None:
    """loss = symmetric CE of scores * exp(2 * 0.07), computed with explicit loops."""
    scores = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = loss()(on(scores))
    scale = math.exp(2 * out.logs["temp"])  # 0.07 as stored in the float32 parameter
    expected = loops.symmetric_ce([[v * scale for v in row] for row in scores.tolist()])
    assert abs(float(out.value.detach()) - expected) < 1e-12
    assert out.logs["temp"] == pytest.approx(0.07, abs=1e-8) and out.logs["scale"] == pytest.approx(scale)


def test_matches_std_info_nce_at_the_equivalent_temperature() -> None:
    """Reference: std info-nce with temperature exp(-2 temp) gives the same value at initialisation."""
    std = load_component_class("loss", "info-nce")
    scores = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    component = loss()
    ref = std(std.Config(temperature=math.exp(-2 * float(component.temp.detach()))), Runtime())(on(scores)).value
    torch.testing.assert_close(component(on(scores)).value, ref)


def test_temp_is_learnable_with_the_analytic_gradient() -> None:
    scores = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    component = loss()
    assert [n for n, _ in component.named_parameters()] == ["temp"]
    component(on(scores)).value.backward()
    h = 1e-6

    def value(t: float) -> float:
        return loops.symmetric_ce([[v * math.exp(2 * t) for v in row] for row in scores.tolist()])

    t = float(component.temp.detach())
    numeric = (value(t + h) - value(t - h)) / (2 * h)
    assert float(component.temp.grad) == pytest.approx(numeric, rel=1e-6)


def test_exponent_zero_has_no_parameter_and_is_plain_info_nce() -> None:
    scores = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    component = loss(exponent=0)
    assert list(component.parameters()) == []
    assert abs(float(component(on(scores)).value.detach()) - loops.symmetric_ce(scores.tolist())) < 1e-12
    fixed = loss(learnable=False, temp=0.5)
    assert list(fixed.parameters()) == []
    expected = loops.symmetric_ce([[v * math.exp(1.0) for v in row] for row in scores.tolist()])
    assert abs(float(fixed(on(scores)).value.detach()) - expected) < 1e-12


def test_extra_columns_are_row_negatives_only_and_bad_shapes_fail() -> None:
    scores = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    scaled = (scores * math.exp(2 * float(loss().temp.detach()))).tolist()
    rows = sum(math.log(sum(math.exp(v) for v in r)) - r[i] for i, r in enumerate(scaled)) / 2
    cols = sum(math.log(sum(math.exp(scaled[k][j]) for k in range(2))) - scaled[j][j] for j in range(2)) / 2
    assert abs(float(loss()(on(scores)).value.detach()) - (rows + cols) / 2) < 1e-12
    assert abs(float(loss(symmetric=False)(on(scores)).value.detach()) - rows) < 1e-12
    with pytest.raises(InputError):
        loss()(on(torch.randn(4, 2)))


# --------------------------------------------------------------------------- ORMA's three-level objective
def tiny_batch() -> dict[str, Encoded]:
    gen = torch.Generator().manual_seed(7)

    def seq(n: int, length: int, lengths: list[int]) -> Granularity:
        mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
        return Granularity(torch.randn(n, length, 6, generator=gen, dtype=torch.float64), mask)

    text = Encoded({
        "sentence": Granularity(torch.randn(3, 6, generator=gen, dtype=torch.float64)),
        "token": seq(3, 7, [7, 4, 5]),
        "multitoken-base": seq(3, 7, [7, 4, 5]),
    })
    molecule = Encoded({
        "molecule": Granularity(torch.randn(3, 6, generator=gen, dtype=torch.float64)),
        "atom": seq(3, 6, [6, 3, 4]),
        "motif": seq(3, 4, [4, 2, 3]),
    })
    return {"text": text, "molecule": molecule}


def orma_model() -> AssembledModel:
    dot = load_component_class("aligner", "dot")
    aligners = {
        "global": dot(dot.Config(), Runtime()),
        "mid": OTMultiTokenAligner(OTMultiTokenAligner.Config(), Runtime()),
        "local": WeightedPoolingAligner(WeightedPoolingAligner.Config(), Runtime()),
    }
    between = {
        "global": (("text", "sentence"), ("molecule", "molecule")),
        "mid": (("text", "multitoken-base"), ("molecule", "motif")),
        "local": (("text", "token"), ("molecule", "atom")),
    }
    losses = [loss(), loss(exponent=0), loss(exponent=0)]
    shapes = {
        "text": {"sentence": "pooled", "token": "sequence", "multitoken-base": "sequence"},
        "molecule": {"molecule": "pooled", "atom": "sequence", "motif": "sequence"},
    }
    return AssembledModel(
        {}, {}, aligners, between, losses, [[n] for n in WEIGHTS], list(WEIGHTS.values()), shapes, {}
    ).double()


def hand_objective(outputs: dict[str, Encoded], paired: bool, temp: float = 0.07) -> float:
    """ORMA's forward with explicit loops: three logit matrices, symmetric CE each, weighted sum."""
    text, mol = outputs["text"], outputs["molecule"]
    n = 3

    def rows(g: Granularity, i: int) -> tuple[list[list[float]], list[bool]]:
        return g.hidden[i].tolist(), g.mask[i].tolist()

    sent, mols = text["sentence"].hidden.tolist(), mol["molecule"].hidden.tolist()
    global_logits = [[math.exp(2 * temp) * loops.dot(sent[i], mols[j]) for j in range(n)] for i in range(n)]

    def level(pool) -> list[list[float]]:  # type: ignore[no-untyped-def]
        if paired:
            pooled = [pool(i, i) for i in range(n)]
            return [[loops.dot(pooled[i][0], pooled[j][1]) for j in range(n)] for i in range(n)]
        return [[loops.dot(*pool(i, j)) for j in range(n)] for i in range(n)]

    local = level(lambda i, j: loops.sparc(*rows(text["token"], i), *rows(mol["atom"], j), 1e-8, False))
    mid = level(lambda i, j: loops.mid_pair(*rows(text["multitoken-base"], i), *rows(mol["motif"], j)))
    return (
        WEIGHTS["global"] * loops.symmetric_ce(global_logits)
        + WEIGHTS["mid"] * loops.symmetric_ce(mid)
        + WEIGHTS["local"] * loops.symmetric_ce(local)
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_three_level_loss_equals_hand_computation(mode: str) -> None:
    """Faithful: the assembled objective (dot + ot-multitoken + weighted-pooling, one info-nce-exp per level
    with weights) equals ORMA's loss computed by explicit loops; paired logits in training, all pairs in eval."""
    model = orma_model()
    model.train(mode == "train")
    outputs = tiny_batch()
    out = model.objective(outputs)
    expected = hand_objective(outputs, paired=mode == "train", temp=float(model.losses[0].temp.detach()))
    assert out.loss is not None
    assert abs(float(out.loss.detach()) - expected) < 1e-9
    assert out.logs["loss0.ExpTemperatureInfoNCE.temp"] == pytest.approx(0.07)


def test_three_level_objective_trains_temp_and_every_input() -> None:
    model = orma_model().train()
    outputs = tiny_batch()
    leaves = []
    for enc in outputs.values():
        for g in enc.granularities.values():
            g.hidden.requires_grad_(True)
            leaves.append(g.hidden)
    out = model.objective(outputs)
    assert out.loss is not None
    out.loss.backward()
    assert model.losses[0].temp.grad is not None and float(model.losses[0].temp.grad) != 0.0
    assert all(t.grad is not None and float(t.grad.abs().sum()) > 0 for t in leaves)


CASES = [
    Case(
        "loss",
        "orma.info-nce-exp",
        bad_configs=[{"exponent": -1}, {"learnable": "maybe"}, {"symmetric": "yes please"}],
    ),
    Case("loss", "orma.info-nce-exp", {"exponent": 0}, id="loss-info-nce-exp-no-parameter"),
    Case(
        "loss",
        "orma.info-nce-exp",
        {"exponent": 0},
        aligner={"type": "orma.weighted-pooling", "train_scoring": "all-pairs"},
        id="loss-info-nce-exp-weighted-pooling",
    ),
    Case(
        "loss",
        "orma.info-nce-exp",
        {"exponent": 0},
        aligner={"type": "orma.ot-multitoken"},
        id="loss-info-nce-exp-ot-multitoken",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
