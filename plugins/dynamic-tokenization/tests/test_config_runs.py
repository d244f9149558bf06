"""The plugin's configs pass repmix check; a tiny config evaluates end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli, write_tiny_sts

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_configs_check(config: Path, minilm_dir: str) -> None:
    # the hypernetwork checkpoint is trained by a command (docs): check the rest with an untrained network
    assert run_cli(["check", str(config), "model.towers.query.encoder.hypernetwork.weights=null"]) == 0


@pytest.mark.parametrize("embeddings", ["mean", "hypernetwork"])
def test_tiny_evaluation_runs(tmp_path: Path, tiny_bert_dir: str, embeddings: str) -> None:
    data = write_tiny_sts(tmp_path / "sts")
    hn = f"{{type: zett.hypernetwork, model: {tiny_bert_dir}, layers: 1, hidden: 32, heads: 2}}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
model:
  towers:
    query:
      tokenizer: {{type: dynamic-tokenization.dynamic-bpe, model: {tiny_bert_dir}, max_merges: null}}
      encoder: {{type: dynamic-tokenization.dynamic-transformer, model: {tiny_bert_dir}, embeddings: {embeddings},
                hypernetwork: {hn}}}
      poolers: {{sentence: {{type: std.mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
data: {{type: std.sts, path: {data}, split: dev}}
evaluate:
  - {{type: std.sts, name: sts, on: similarity, progress: false}}
  - {{type: dynamic-tokenization.token-counts, name: tokens}}
""")
    assert run_cli(["evaluate", str(cfg), "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    flat = metrics.get("metrics", metrics)
    assert "sts/spearman_cosine" in flat
    assert flat["tokens/tokens_per_text_dynamic"] <= flat["tokens/tokens_per_text_base"]
