"""Bad input: one clear message, or a documented and counted fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from repmix.sdk import ConfigError, InputError, Runtime, load_component_class
from repmix.sdk.testing import run_cli, write_tiny_bert

HN = {"layers": 1, "hidden": 32, "heads": 2}


def build(kind: str, name: str, runtime: Runtime | None = None, **config):  # type: ignore[no-untyped-def]
    cls = load_component_class(kind, name)
    return cls(cls.Config(**config), runtime or Runtime())


def untrained_checkpoint(folder: Path, model: str) -> Path:
    from repmix_zett.checkpoint import save_checkpoint

    hn = build("encoder", "zett.hypernetwork", model=model, **HN)
    save_checkpoint(folder, hn.net, {"architecture": hn.arch.to_dict(), "source": {
        "model": model, "vocab_size": hn.arch.source_vocab_size, "n_embd": hn.arch.n_embd,
        "fingerprint": hn.fingerprint}})
    return folder


def test_empty_and_whitespace_texts_are_counted_and_encode_as_specials(tiny_target: str, tiny_bert_dir: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    tok = build("tokenizer", "zett.target-tokenizer", tokenizer=tiny_target, model=tiny_bert_dir)
    with caplog.at_level(logging.WARNING, logger="repmix_zett"):
        batch = tok(["", "   ", "the man is riding"])
        tok(["\t"])
    assert tok.counts == {"texts": 4, "empty_texts": 3}
    assert sum("empty or whitespace-only" in r.message for r in caplog.records) == 1  # warned once
    cls_, sep = tok.backend.token_to_id("[CLS]"), tok.backend.token_to_id("[SEP]")
    assert batch["input_ids"][0, :2].tolist() == [cls_, sep] and int(batch["attention_mask"][0].sum()) == 2
    enc = build("encoder", "zett.transferred-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
                embeddings="mean").eval()
    with torch.no_grad():
        assert torch.isfinite(enc(batch)["token"].hidden).all()


def test_empty_batch_and_non_strings(tiny_target: str, tiny_bert_dir: str) -> None:
    tok = build("tokenizer", "zett.target-tokenizer", tokenizer=tiny_target, model=tiny_bert_dir)
    with pytest.raises(InputError, match="empty batch"):
        tok([])
    with pytest.raises(InputError, match="expected a string"):
        tok(["ok", 3])
    surfaces = build("tokenizer", "zett.surfaces", model=tiny_bert_dir)
    with pytest.raises(InputError, match="must not be empty"):
        surfaces(["horse", ""])


def test_checkpoint_of_another_model_is_refused(tmp_path: Path, tiny_bert_dir: str) -> None:
    other = write_tiny_bert(tmp_path / "other", words=("alpha", "beta", "gamma"), hidden=32)
    ckpt = untrained_checkpoint(tmp_path / "ckpt", str(other))
    with pytest.raises(ConfigError, match="was trained for the source model") as err:
        build("encoder", "zett.hypernetwork", model=tiny_bert_dir, weights=str(ckpt))
    assert "fingerprint" in err.value.message


def test_target_tokenizer_that_does_not_match_the_model(tmp_path: Path, tiny_bert_dir: str,
                                                       corpus_texts: list[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    # byte-level BPE: no ## marks, its tokens cannot be decomposed into WordPiece
    bl = Tokenizer(models.BPE())
    bl.pre_tokenizer = pre_tokenizers.ByteLevel()
    bl.train_from_iterator(corpus_texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["[CLS]", "[SEP]", "[PAD]"]))
    bl.save(str(tmp_path / "byte.json"))
    with pytest.raises(ConfigError, match="marks word-internal tokens"):
        build("tokenizer", "zett.target-tokenizer", tokenizer=str(tmp_path / "byte.json"), model=tiny_bert_dir)
    # ## BPE without the model's [CLS]/[SEP]
    wp = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##"))
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(corpus_texts, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>"],
                                                      continuing_subword_prefix="##"))
    wp.save(str(tmp_path / "nocls.json"))
    with pytest.raises(ConfigError, match="does not match"):
        build("tokenizer", "zett.target-tokenizer", tokenizer=str(tmp_path / "nocls.json"), model=tiny_bert_dir)


def test_target_trained_for_another_model_is_refused_by_the_encoder(
    tmp_path: Path, tiny_bert_dir: str, target_writer, corpus_texts: list[str]  # type: ignore[no-untyped-def]
) -> None:
    """Special tokens of the target that the model does not have: one ConfigError from the encoder."""
    other = write_tiny_bert(tmp_path / "other", hidden=32)
    vocab = (other / "vocab.txt").read_text().splitlines()
    (other / "tokenizer.json").unlink()
    (other / "vocab.txt").write_text("\n".join(["[FOO]", *vocab]) + "\n")
    cfg = json.loads((other / "tokenizer_config.json").read_text())
    cfg["additional_special_tokens"] = ["[FOO]"]
    (other / "tokenizer_config.json").write_text(json.dumps(cfg))
    target = target_writer(tmp_path / "t", str(other), corpus_texts, 150)
    tok = build("tokenizer", "zett.target-tokenizer", tokenizer=str(target), model=str(other))
    with pytest.raises(ConfigError, match=r"\[FOO\].*does not match the model"):
        build("encoder", "zett.transferred-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir, embeddings="mean")


def test_transferred_encoder_needs_the_target_tokenizer(tiny_bert_dir: str) -> None:
    std_tok = build("tokenizer", "std.hf-tokenizer", model=tiny_bert_dir)
    with pytest.raises(ConfigError, match="zett.target-tokenizer"):
        build("encoder", "zett.transferred-transformer", Runtime(tokenizer=std_tok), model=tiny_bert_dir,
              embeddings="mean")


def test_config_errors_are_located(tmp_path: Path, tiny_bert_dir: str, tiny_target: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = untrained_checkpoint(tmp_path / "ckpt", tiny_bert_dir)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: zett.target-tokenizer, tokenizer: {tiny_target}, model: {tiny_bert_dir}}}
      encoder:
        type: zett.transferred-transformer
        model: {tiny_bert_dir}
        hypernetwork: {{type: zett.hypernetwork, model: {tiny_bert_dir}, weights: {ckpt}, layers: 3}}
      poolers: {{sentence: {{type: std.mean}}}}
""")
    assert run_cli(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "c.yaml:9" in err and "layers 3 differs from the checkpoint's 1" in err
    assert run_cli(["check", str(cfg), "model.towers.text.encoder.hypernetwork.layers=null",
                    "model.towers.text.encoder.hypernetwork.weights=/no/such"]) == 2
    assert "hypernetwork weights '/no/such' not found" in capsys.readouterr().err
    assert run_cli(["check", str(cfg), "model.towers.text.encoder.hypernetwork.layers=null"]) == 0


def test_command_errors(tmp_path: Path, tiny_bert_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "hn.yaml"
    cfg.write_text(f"model: {tiny_bert_dir}\ncorpus: [{{path: /no/such.jsonl, columns: [text]}}]\nstepz: 3\n")
    assert run_cli(["zett", "train-hypernetwork", str(cfg), "-o", str(tmp_path / "o")]) == 2
    assert "unknown key 'stepz'" in capsys.readouterr().err
    cfg.write_text(f"model: {tiny_bert_dir}\ncorpus: [{{path: /no/such.jsonl, columns: [text]}}]\n")
    assert run_cli(["zett", "train-hypernetwork", str(cfg), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert run_cli(["zett", "train-tokenizer", "--corpus", "/no/such.jsonl", "--like", tiny_bert_dir,
                    "-o", str(tmp_path / "t")]) == 2
    assert "not found" in capsys.readouterr().err
