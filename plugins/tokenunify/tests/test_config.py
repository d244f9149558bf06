"""The shipped config passes `repmix check`; wrong pipelines are refused with one message; a tiny
TokenUnify pre-training runs end to end through the engine and its loss falls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pretrain-scifact.yaml"


def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_bad_pipelines_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG), "model.towers.text.corruption={type: std.mlm-mask}"]) == 2
    assert "no corruption that emits it" in capsys.readouterr().err
    gpt2 = "{model_type: gpt2, n_layer: 2, n_embd: 32, n_head: 2, n_positions: 128}"
    assert run_cli(["check", str(CONFIG), f"model.towers.text.encoder.architecture={gpt2}",
                    "model.towers.text.encoder.head=causal"]) == 2
    assert "needs a bidirectional encoder" in capsys.readouterr().err
    assert run_cli(["check", str(CONFIG), "model.towers.text.corruption.mixture={random: 0}"]) == 2
    assert "at least one objective" in capsys.readouterr().err


TINY = """
name: tiny-tokenunify
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 32}}
      corruption: {{type: tokenunify.mixture, rate: 0.3}}
      encoder:
        type: std.hf-lm
        architecture: {{model_type: bert, num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2,
                       intermediate_size: 64, max_position_embeddings: 32}}
  losses:
    - {{type: tokenunify.mixture-lm}}
data: {{type: std.text-corpus, path: {corpus}, block_size: 32}}
train: {{epochs: 1, batch_size: 8, lr: 3.0e-3, seed: 0, max_steps: 8, log_every: 1, checkpoint_every: 100}}
"""


def test_tiny_pretraining_runs(tmp_path: Path) -> None:
    pytest.importorskip("repmix_std")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the cat sat on the mat number {i % 7} and the dog ran" for i in range(60)),
                      encoding="utf-8")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(corpus=corpus), encoding="utf-8")
    assert run_cli(["train", str(cfg), "-o", str(tmp_path / "run")]) == 0
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if r.get("type") == "train"]
    assert losses and losses[-1] < losses[0]
    assert any(k.endswith("next_all_loss") for r in logs for k in r)  # the per-objective losses are logged
