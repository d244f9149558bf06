"""The pass-key task (format of llama/run_test.py), its dataset and evaluator, and the plugin's configs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli
from repmix_landmark_attention import make_prompt, read_key, training_text
from repmix_landmark_attention.passkey import GARBAGE, HEADER, QUESTION

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_prompt_layout_follows_the_official_generator() -> None:
    rng = random.Random(0)
    p = make_prompt(500, rng)
    lines = p.text.split("\n")
    assert lines[0] == HEADER and lines[-1] == QUESTION
    info = f"The pass key is {p.key}. Remember it. {p.key} is the pass key."
    assert info in lines and 1 <= p.key <= 50000
    garbage = [ln for ln in lines if ln.startswith("The grass")]
    assert sum(len(g) for g in garbage) == 500 and all(GARBAGE.startswith(g[: len(GARBAGE)]) for g in garbage)
    assert make_prompt(0, random.Random(1), header="").text.split("\n")[-2].startswith("The pass key is")
    assert training_text(p).endswith(f"The pass key is {p.key}.")


def test_read_key_takes_the_first_integer() -> None:
    assert read_key(" 31415. Remember") == 31415
    assert read_key(" the key") is None


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_configs_are_accepted(config: Path) -> None:
    assert run_cli(["check", str(config)]) == 0


def test_train_and_evaluate_a_tiny_passkey_model(tmp_path: Path) -> None:
    cfg = tmp_path / "pk.yaml"
    cfg.write_text("""
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 160}
      encoder: {type: landmark-attention.landmark-lm, n_layer: 1, n_embd: 16, n_head: 2, mem_freq: 8}
  losses: [{type: std.causal-lm}]
data: {type: landmark-attention.passkey, n_examples: 16, garbage_max: 40}
train: {epochs: 1, batch_size: 8, max_steps: 2, log_every: 1}
evaluate: {type: landmark-attention.passkey-retrieval, lengths: [0, 200], n_per_length: 2, top_k: [null, 2], max_new_tokens: 3}
""")
    out = tmp_path / "run"
    assert run_cli(["train", str(cfg), "-o", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"full/accuracy@0", "full/accuracy@200", "k2/accuracy@200", "tokens@200"}
    assert metrics["tokens@200"] > 160  # longer than anything seen in training


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "bad.yaml"
    base = """
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 64}
      encoder: {type: std.hf-lm, architecture: {model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 64}}
  losses: [{type: std.causal-lm}]
data: {type: landmark-attention.passkey, n_examples: 4}
"""
    cfg.write_text(base + "evaluate: {type: landmark-attention.passkey-retrieval, lengths: [100], n_per_length: 1, top_k: [2]}\n")
    assert run_cli(["evaluate", str(cfg), "--no-progress"]) == 2
    assert "top_k settings need a landmark-lm" in capsys.readouterr().err
    cfg.write_text(base + "evaluate: {type: landmark-attention.passkey-retrieval, lengths: [400], n_per_length: 1}\n")
    assert run_cli(["evaluate", str(cfg), "--no-progress"]) == 2
    assert "the model attends to 64 at most" in capsys.readouterr().err
    cfg.write_text(base.replace("n_examples: 4", "garbage_min: 9, garbage_max: 3"))
    assert run_cli(["check", str(cfg)]) == 2
    assert "garbage_min 9 exceeds garbage_max 3" in capsys.readouterr().err
