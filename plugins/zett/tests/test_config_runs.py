"""The plugin's configs pass repmix check; a tiny transfer evaluates end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli, write_tiny_sts

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
EVAL_CONFIGS = [c for c in CONFIGS if not c.name.startswith("hypernetwork")]


@pytest.mark.parametrize("config", EVAL_CONFIGS, ids=lambda p: p.name)
def test_evaluation_configs_check(config: Path, minilm_dir: str) -> None:
    # the tokenizer and the hypernetwork are trained by commands (docs): check with MiniLM's own tokenizer
    # and an untrained network
    assert run_cli(["check", str(config), "model.towers.query.tokenizer.tokenizer=all-MiniLM-L6-v2",
                    "model.towers.query.encoder.hypernetwork.weights=null"]) == 0


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.name.startswith("hypernetwork")], ids=lambda p: p.name)
def test_training_configs_validate(config: Path, minilm_dir: str) -> None:
    from repmix.sdk import load_config
    from repmix_zett.training import HypernetTrainConfig

    cfg = HypernetTrainConfig.model_validate(load_config(config).data)
    assert cfg.corpus and cfg.lexical_loss_weight == 0.5


def test_tiny_transfer_evaluates(tmp_path: Path, tiny_bert_dir: str, tiny_target: str) -> None:
    data = write_tiny_sts(tmp_path / "sts")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
model:
  towers:
    query:
      tokenizer: {{type: zett.target-tokenizer, tokenizer: {tiny_target}, model: {tiny_bert_dir}}}
      encoder:
        type: zett.transferred-transformer
        model: {tiny_bert_dir}
        hypernetwork: {{type: zett.hypernetwork, model: {tiny_bert_dir}, layers: 1, hidden: 32, heads: 2}}
      poolers: {{sentence: {{type: std.mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
data: {{type: std.sts, path: {data}, split: dev}}
evaluate:
  - {{type: std.sts, name: sts, on: similarity, progress: false}}
  - {{type: zett.transfer-token-counts, name: tokens, model: {tiny_bert_dir}}}
""")
    assert run_cli(["evaluate", str(cfg), "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    flat = metrics.get("metrics", metrics)
    assert "sts/spearman_cosine" in flat and flat["tokens/tokens_per_text_target"] > 0
    # the transferred model saves and loads back elsewhere: the target tokenizer travels in files/
    import torch
    from repmix.sdk import load

    model = load(str(cfg))
    texts = ["the man is riding a horse", "a dog"]
    model.save(tmp_path / "saved")
    again = load(str(tmp_path / "saved"))
    torch.testing.assert_close(again.encode(texts, tower="query"), model.encode(texts, tower="query"))
