"""The plugin's configs run: each trains for two steps at a tiny size and is evaluated.

The text model is swapped for a tiny random BERT and every width for 32 through dotted
overrides, so the test exercises the configs' structure (towers, poolers, the three
alignment levels, losses, data splits, evaluators, extra candidates) in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from repmix.sdk import load_config, train_run
from repmix.sdk.testing import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def tiny_overrides(model_dir: str) -> list[str]:
    """Swap MiniLM for the tiny BERT and shrink every width and step count."""
    text = "model.towers.text"
    return [
        f"{text}.tokenizer.model={model_dir}",
        f"{text}.tokenizer.max_length=24",
        f"{text}.encoder.model={model_dir}",
        *(f"{text}.poolers.{p}.dim=32" for p in ("sentence", "token", "multitoken")),
        "model.towers.molecule.encoder.dim=32",
        "train.max_steps=2",
        "train.batch_size=8",
    ]


def finite_metrics(metrics: dict[str, float], prefix: str = "") -> None:
    for direction in ("text->molecule", "molecule->text"):
        for name in ("mrr", "hits@1", "hits@10", "mean_rank"):
            value = metrics[f"{prefix}{direction}/{name}"]
            assert math.isfinite(value), (direction, name)
        assert 0.0 < metrics[f"{prefix}{direction}/mrr"] <= 1.0


def test_orma_demo_config_trains_and_evaluates(tiny_bert_dir: str, tmp_path: Path) -> None:
    overrides = [*tiny_overrides(tiny_bert_dir), "data.size=40", "model.alignments.mid.iterations=10"]
    cfg = load_config(EXAMPLES / "orma-demo.yaml", overrides)
    assert set(cfg.data["model"]["alignments"]) == {"global", "local", "mid"}
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    finite_metrics(metrics, "orma/")  # ORMA's weighted sum of the three levels
    finite_metrics(metrics, "global/")  # the sentence level alone
    assert (tmp_path / "run" / "model").is_dir()


def test_orma_chebi20_config_trains_and_evaluates(tiny_bert_dir: str, chebi20_dir: Path, tmp_path: Path) -> None:
    overrides = [
        *tiny_overrides(tiny_bert_dir),
        f"data.path={chebi20_dir}",
        "data.limit=16",
        f"evaluate.1.extra_candidates.path={chebi20_dir}",
        "evaluate.1.extra_candidates.limit=20",
        "model.alignments.mid.iterations=10",
    ]
    cfg = load_config(CONFIGS / "orma-chebi20.yaml", overrides)
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    finite_metrics(metrics, "split/")
    finite_metrics(metrics, "with-train-molecules/")
    # the extra candidates only make ranking harder
    assert metrics["with-train-molecules/text->molecule/mean_rank"] >= 1.0


def test_ablation_grid_is_valid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = run_cli(["ablate", str(CONFIGS / "ablate-orma.yaml"), "--dry-run", "-o", str(tmp_path / "abl")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "7 combination(s) x 2 seed(s) = 14 run(s), all valid" in out
    for variant in (
        "global=1.0__local=0.0__mid=0.0__solver=ipot__assignment=argmin__motifs=brics",  # sentence level only
        "global=0.5__local=0.25__mid=0.25__solver=ipot__assignment=argmin__motifs=brics",  # ORMA
        "solver=sinkhorn",
        "assignment=argmax",
        "motifs=none",
    ):
        assert variant in out
    assert not (tmp_path / "abl").exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    ("grid", "summary"),
    [
        ("ablate-orma-chebi20.yaml", "7 combination(s) x 2 seed(s) = 14 run(s), all valid"),
        ("ablate-orma-frozen-chebi20.yaml", "6 combination(s) x 2 seed(s) = 12 run(s), all valid"),
    ],
)
def test_chebi20_grids_are_valid(grid: str, summary: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = run_cli(["ablate", str(CONFIGS / grid), "--dry-run", "-o", str(tmp_path / "abl")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert summary in out
    if grid == "ablate-orma-chebi20.yaml":
        assert "atoms=identifiers__buckets=1024" in out and "text_top=0" in out and "fp=false" in out


def test_gated_config_is_the_finetuned_one_with_the_fusion_gate() -> None:
    gated = load_config(CONFIGS / "orma-gated-chebi20.yaml").data
    base = load_config(CONFIGS / "orma-finetuned-chebi20.yaml").data
    encoder = gated["model"]["towers"]["molecule"].pop("encoder")
    assert encoder == {**base["model"]["towers"]["molecule"].pop("encoder"), "fusion_gate": True}
    assert {**gated, "name": None} == {**base, "name": None}
