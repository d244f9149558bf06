"""The packaged configs pass ``repmix check``; a tiny HAT trains with std.causal-lm and is scored by
std.bits-per-byte unchanged; the tokenizer packs a text corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["lm-scifact.yaml", "lm-smiles.yaml"])
def test_packaged_configs_check(name: str) -> None:
    assert run_cli(["check", str(CONFIGS / name)]) == 0


@pytest.mark.parametrize("words", ["text", "smiles"])
def test_tiny_hat_trains_and_scores(tmp_path: Path, words: str) -> None:
    docs = (["The quick brown fox jumps over the lazy dog, twice.", "Vitamin D deficiency and IL-6 (p<0.05).",
             "naïve café 😀 words"] if words == "text" else ["CC(=O)O", "c1ccccc1Br", "C[N+](C)(C)C", "OCC(O)CO"])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(docs * 24) + "\n", encoding="utf-8")
    config = tmp_path / "hat.yaml"
    config.write_text(
        f"""
model:
  towers:
    text:
      tokenizer: {{type: hat.hat-tokenizer, words: {words}, max_length: 64}}
      encoder: {{type: hat.hat, hidden_size: 16, heads: 2, backbone_layers: 1, byte_hidden_size: 8, byte_heads: 2}}
  losses:
    - {{type: std.causal-lm}}
data: {{type: std.text-corpus, path: '{corpus}', split: all, block_size: 64}}
train: {{epochs: 1, batch_size: 4, lr: 1.0e-2, seed: 0, max_steps: 4, device: cpu, log_every: 1}}
evaluate:
  - {{type: std.bits-per-byte, name: heldout, data: {{type: std.text-corpus, path: '{corpus}'}}, split: all, limit: 4}}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["type"] == "train"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["bits_per_byte"] < 9 and metrics["bytes_per_token"] == 1.0
