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
    overrides = ["model.towers.query.encoder.hypernetwork.weights=null"] if "zett.hypernetwork" in config.read_text() else []
    assert run_cli(["check", str(config), *overrides]) == 0


@pytest.mark.parametrize("name", ["lm-scifact.yaml", "lm-scifact-fixed-vocabulary.yaml"])
def test_tiny_lm_trains_and_scores_through_the_cli(tmp_path: Path, lm_corpus: Path, name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder configs, scaled down: train with std.causal-lm, scored by std's LM evaluators unchanged."""
    pytest.importorskip("repmix_std")
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))  # the trained base BPE (and W) are cached there
    text = (CONFIGS[0].parent / name).read_text()
    corpus = str(lm_corpus)
    text = text.replace("../shared/data/scifact/corpus.jsonl", corpus)
    cfg = tmp_path / "lm.yaml"
    cfg.write_text(text)
    arch = "{model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 32}"
    overrides = [
        "model.towers.text.tokenizer.max_length=32", "model.towers.text.tokenizer.base.vocab_size=120",
        "model.towers.text.tokenizer.base.max_length=32", f"model.towers.text.encoder.architecture={arch}",
        "data.block_size=32", "train.batch_size=4", "train.max_steps=2", "train.warmup_steps=0",
        "train.checkpoint_every=0", "evaluate.1.limit=4",
    ]
    run = tmp_path / "run"
    assert run_cli(["train", str(cfg), "-o", str(run), "--no-progress", *overrides]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    flat = metrics.get("metrics", metrics)
    assert 0 < flat["heldout/bits_per_byte"] < 20 and flat["heldout/tokens"] > 0
    assert "typos/bits_per_byte_typos" in flat
    # the saved model reloads without the corpus: the trained base tokenizer (and W) travel with it
    saved = (run / "model" / "config.yaml").read_text()
    assert "tokenizer.base/file/tokenizer.json" in saved
    assert ("vocabulary_file: files/" in saved) == ("fixed" in name)
    assert run_cli(["generate", str(run), "--prompt", "Vitamin D", "--max-new-tokens", "3"]) == 0


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
