"""Bad input: one clear message, or a documented and counted fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from repmix.sdk import ConfigError, InputError, Runtime, load_component_class
from repmix.sdk.testing import run_cli, write_tiny_bert


def build(kind: str, name: str, runtime: Runtime | None = None, **config):  # type: ignore[no-untyped-def]
    cls = load_component_class(kind, name)
    runtime = runtime or Runtime()
    block = config.get("hypernetwork")
    if isinstance(block, dict):
        runtime.nested = {"hypernetwork": build("encoder", block["type"], **{k: v for k, v in block.items() if k != "type"})}
    return cls(cls.Config(**config), runtime)


def test_empty_and_whitespace_texts_are_counted(tiny_bert_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir)
    with caplog.at_level(logging.WARNING, logger="repmix_dynamic_tokenization"):
        batch = tok(["", " \t ", "the horseman"])
        tok(["\n"])
    assert tok.counts["empty_texts"] == 3 and tok.counts["texts"] == 4
    assert sum("empty or whitespace-only" in r.message for r in caplog.records) == 1  # warned once
    assert batch.tokens[0] == ["[CLS]", "[SEP]"] and batch.tokens[1] == ["[CLS]", "[SEP]"]
    enc = build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
                embeddings="mean").eval()
    with torch.no_grad():
        assert torch.isfinite(enc(batch)["token"].hidden).all()


def test_empty_batch_and_non_strings(tiny_bert_dir: str) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir)
    with pytest.raises(InputError, match="empty batch"):
        tok([])
    with pytest.raises(InputError, match="item 1 of the batch: expected a string"):
        tok(["ok", None])


def test_tokenizer_of_another_model_is_refused(tmp_path: Path, tiny_bert_dir: str) -> None:
    other = write_tiny_bert(tmp_path / "other", words=("alpha", "beta", "gamma"), hidden=32)
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=str(other))
    with pytest.raises(ConfigError, match="does not match the model"):
        build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
              embeddings="mean")


def test_hypernetwork_of_another_vocabulary_is_refused(tmp_path: Path, tiny_bert_dir: str) -> None:
    try:
        load_component_class("encoder", "zett.hypernetwork")
    except ConfigError:
        pytest.skip("the zett plugin is not installed")
    other = write_tiny_bert(tmp_path / "other", words=("alpha", "beta", "gamma"), hidden=32)
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir)
    hn = {"type": "zett.hypernetwork", "model": str(other), "layers": 1, "hidden": 32, "heads": 2}
    with pytest.raises(ConfigError, match="hypernetwork's source vocabulary"):
        build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
              hypernetwork=hn)


def test_unsupported_base_tokenizer_file(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="@@"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.train_from_iterator(["a man is riding a horse"] * 4, trainers.BpeTrainer(
        vocab_size=60, special_tokens=["[UNK]"], continuing_subword_prefix="@@"))
    t.save(str(tmp_path / "tok.json"))
    with pytest.raises(ConfigError, match="dynamic-bpe handles WordPiece"):
        build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=str(tmp_path / "tok.json"))
    with pytest.raises(ValueError, match="neither a local directory"):
        build("tokenizer", "dynamic-tokenization.dynamic-bpe", model="/no/such/thing")


def test_encoder_needs_the_dynamic_tokenizer(tiny_bert_dir: str) -> None:
    std_tok = build("tokenizer", "std.hf-tokenizer", model=tiny_bert_dir)
    with pytest.raises(ConfigError, match="dynamic-bpe"):
        build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=std_tok), model=tiny_bert_dir,
              embeddings="mean")


def test_bad_hypernetwork_weights_are_located(tmp_path: Path, tiny_bert_dir: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    try:
        load_component_class("encoder", "zett.hypernetwork")
    except ConfigError:
        pytest.skip("the zett plugin is not installed")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: dynamic-tokenization.dynamic-bpe, model: {tiny_bert_dir}}}
      encoder:
        type: dynamic-tokenization.dynamic-transformer
        model: {tiny_bert_dir}
        hypernetwork: {{type: zett.hypernetwork, model: {tiny_bert_dir}, weights: /no/such/hn}}
      poolers: {{sentence: {{type: std.mean}}}}
""")
    assert run_cli(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "c.yaml:9" in err and "hypernetwork weights '/no/such/hn' not found" in err
