"""ERNIE-Gram through the engine: the lexicon is extracted at build time, training lowers the loss, the saved
model carries the lexicon, its weights load into the fine-tuning config, and bad configs fail clearly."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from repmix.sdk import build_model, load, load_config, plan_model
from repmix.sdk.testing import run_cli

WORDS = ["the", "cell", "protein", "gene", "expression", "increased", "in", "patients", "with", "the", "study", "results", "of", "mice", "tumor", "cancer", "blood", "levels", "receptor", "binding", "signal", "pathway", "activity"]
PHRASES = ["in patients with", "the cell", "gene expression", "signal pathway"]
ENCODER = """
      encoder:
        type: std.hf-lm
        architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2,
                       intermediate_size: 64, max_position_embeddings: 48}
        head: masked"""


def write_corpus(path: Path, n: int = 80) -> Path:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            parts = [rng.choice(PHRASES) if rng.random() < 0.3 else rng.choice(WORDS) for _ in range(12)]
            f.write(json.dumps({"_id": str(i), "text": " ".join(parts)}) + "\n")
    return path


def corruption(corpus: Path, **options: str) -> str:
    settings = {"type": "ernie-gram.ngram-mask", "rate": "0.15",
                "train_on": f"{{type: std.text-corpus, path: {corpus}, split: all}}",
                "top_k": "{2: 40, 3: 40}", "min_count": "3", **options}
    return "\n      corruption:" + "".join(f"\n        {k}: {v}" for k, v in settings.items())


@pytest.fixture()
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("repmix_std", reason="the configs use std's tokenizer, corpus and encoder")
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    return write_corpus(tmp_path / "corpus.jsonl")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One short pre-training run (WordPiece trained, lexicon extracted at build) shared by this module's tests."""
    pytest.importorskip("repmix_std", reason="the configs use std's tokenizer, corpus and encoder")
    tmp_path = tmp_path_factory.mktemp("ernie")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
        corpus = write_corpus(tmp_path / "corpus.jsonl")
        cfg = tmp_path / "ernie.yaml"
        cfg.write_text(f"""
model:
  towers:
    text:
      tokenizer:
        type: std.lm-tokenizer
        algorithm: wordpiece
        vocab_size: 400
        max_length: 48
        train_on: {{type: std.text-corpus, path: {corpus}, split: all}}{corruption(corpus)}{ENCODER}
  losses:
    - {{type: ernie-gram.ngram-mlm, tower: text}}
data: {{type: std.text-corpus, path: {corpus}, split: all, block_size: 48}}
train: {{epochs: 2, batch_size: 8, lr: 3.0e-3, seed: 0, max_steps: 16, log_every: 2, warmup_steps: 0}}
""")
        assert run_cli(["check", str(cfg)]) == 0
        assert run_cli(["train", str(cfg), "-o", str(tmp_path / "run")]) == 0
        yield tmp_path / "run"


def test_lexicon_extracted_training_lowers_the_loss_and_the_model_travels(trained: Path) -> None:
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("type") == "train"]
    assert train[-1]["loss"] < train[0]["loss"]
    assert all(r["loss0.ExplicitNgramMLMLoss.ngram_share"] > 0 for r in train), "n-grams are masked and predicted"
    bundled = list((trained / "model" / "files").rglob("lexicon-*.json"))
    assert len(bundled) == 1
    texts = [e["text"] for e in json.loads(bundled[0].read_text())["ngrams"]]
    assert {"in patients with", "gene expression", "signal pathway"} & set(texts), texts
    shutil.rmtree(trained.parent / "cache")  # the saved model needs neither the cache nor the corpus
    model = load(str(trained / "model"))
    assert len(model.tower("text").corruptor.lexicon) == len(texts)
    with torch.no_grad():
        enc = model.encode_batch("text", ["the cell protein", "mice"])  # a plain batch: no corruption
    assert "targets" not in enc and enc["token"].hidden.shape[0] == 2


def test_pretrained_weights_load_into_the_fine_tuning_config(trained: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_model

    tokenizer_file = next((trained / "model" / "files").rglob("tokenizer.json"))
    finetune = tmp_path / "finetune.yaml"
    finetune.write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: wordpiece, file: {tokenizer_file}, max_length: 48}}{ENCODER}
      poolers: {{sentence: {{type: std.mean, source: token}}}}
    other: {{shared_with: text}}
  alignments:
    similarity: {{type: std.cosine, between: [text.sentence, other.sentence]}}
  losses:
    - {{type: std.mnrl, on: similarity}}
""")
    model = build_model(plan_model(load_config(finetune)))
    # safetensors' loader, as repmix's: tied tensors (the masked-LM decoder and the word embeddings) are stored once
    missing, unexpected = load_model(model, str(trained / "model" / "model.safetensors"), strict=False)
    assert not missing, missing
    assert sorted(unexpected) == ["towers.text.corruptor.ngram_head.bias", "towers.text.corruptor.ngram_head.weight"]


def _error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], command: str = "check") -> str:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    capsys.readouterr()
    args = [command, str(cfg)] + (["-o", str(tmp_path / "built")] if command == "build" else [])
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_lexicon_source_is_required(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(tmp_path, f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 48}}
      corruption: {{type: ernie-gram.ngram-mask}}{ENCODER}
  losses: [{{type: ernie-gram.ngram-mlm}}]
""", capsys)
    assert "train_on" in err and "corruption" in err


@pytest.mark.parametrize(("option", "needle"), [({"top_k": "{1: 10}"}, "lengths must be 2..8"),
                                                ({"rate": "0"}, "rate"),
                                                ({"mask_prob": "0.95"}, "mask_prob + random_prob")])
def test_bad_options_are_located(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
                                 option: dict, needle: str) -> None:
    err = _error(tmp_path, f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 48}}{corruption(corpus, **option)}{ENCODER}
  losses: [{{type: ernie-gram.ngram-mlm}}]
""", capsys)
    assert needle in err and "model.towers.text.corruption" in err


def test_ngram_loss_on_plain_masking_is_refused(tmp_path: Path, corpus: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(tmp_path, f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 48}}
      corruption: {{type: std.mlm-mask}}{ENCODER}
  losses: [{{type: ernie-gram.ngram-mlm}}]
""", capsys)
    assert "ernie-gram.ngram-mask" in err and "model.losses.0" in err


def test_lexicon_of_another_vocabulary_is_refused(tmp_path: Path, corpus: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from repmix_ernie_gram.lexicon import Lexicon

    Lexicon([(1, 2)], vocab_size=100).save(tmp_path / "lex.json")
    err = _error(tmp_path, f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 48}}
      corruption: {{type: ernie-gram.ngram-mask, file: {tmp_path / "lex.json"}}}{ENCODER}
  losses: [{{type: ernie-gram.ngram-mlm}}]
""", capsys, command="build")
    assert "vocabulary of 100 tokens" in err and "261" in err


def test_shipped_config_passes_check() -> None:
    pytest.importorskip("repmix_std")
    root = Path(__file__).resolve().parents[3]
    if not (root.parent / "shared" / "data" / "scifact" / "corpus.jsonl").is_file():
        pytest.skip("the shared SciFact corpus is not beside this checkout")
    cfg = Path(__file__).resolve().parents[1] / "configs" / "pretrain-scifact.yaml"
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert run_cli(["check", str(cfg)]) == 0
    finally:
        os.chdir(cwd)
