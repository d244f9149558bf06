"""The packaged config passes ``repmix check``; a tiny lexinvariant LM trains with std.causal-lm, is scored
by std.bits-per-byte, and position-nll gives identical numbers under a substitution cipher."""

from __future__ import annotations

import json
from pathlib import Path

from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "lm-scifact.yaml"


def test_packaged_config_checks() -> None:
    assert run_cli(["check", str(CONFIG)]) == 0


def test_tiny_lexinvariant_trains_and_is_cipher_invariant(tmp_path: Path) -> None:
    docs = ["the cat sat on the mat and the cat saw the rat on the mat",
            "a dog and a frog sat in a bog with a log and a dog"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(docs * 12) + "\n", encoding="utf-8")
    config = tmp_path / "lex.yaml"
    data = f"{{type: std.text-corpus, path: '{corpus}'}}"
    config.write_text(
        f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 32}}
      encoder: {{type: lexinvariant.lexinvariant, architecture: {{model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 32}}}}
  losses:
    - {{type: std.causal-lm}}
data: {{type: std.text-corpus, path: '{corpus}', split: all, block_size: 32}}
train: {{epochs: 1, batch_size: 4, lr: 1.0e-2, seed: 0, max_steps: 4, device: cpu, log_every: 1}}
evaluate:
  - {{type: std.bits-per-byte, name: heldout, data: {data}, split: all, limit: 4}}
  - {{type: lexinvariant.position-nll, name: plain, buckets: 2, data: {data}, split: all, limit: 6}}
  - {{type: lexinvariant.position-nll, name: cipher, buckets: 2, cipher_seed: 3, data: {data}, split: all, limit: 6}}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r["type"] == "train"]) == 4
    m = json.loads((run / "metrics.json").read_text())
    assert 0 < m["heldout/bits_per_byte"] < 12
    for key in ("nll_1", "nll_2", "nll", "documents"):
        assert abs(m[f"plain/{key}"] - m[f"cipher/{key}"]) < 1e-4, key
