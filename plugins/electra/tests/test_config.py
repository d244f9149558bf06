"""ELECTRA through the engine: a tiny config trains (the loss falls), the saved discriminator encodes plain
text, its weights load into the fine-tuning config (corruption removed), and bad pipelines fail at check."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from repmix.sdk import build_model, load, load_config, plan_model
from repmix.sdk.testing import run_cli

WORDS = ["the", "cell", "protein", "gene", "expression", "increased", "decreased", "patients", "study", "results", "mice", "tumor", "cancer", "blood", "levels", "receptor", "binding", "signal", "pathway", "activity"]
TOWER = """
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 48}
      encoder:
        type: electra.discriminator
        architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2,
                       intermediate_size: 64, max_position_embeddings: 48}"""


def write_corpus(path: Path, n: int = 60) -> Path:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"_id": str(i), "text": " ".join(rng.choice(WORDS) for _ in range(30))}) + "\n")
    return path


def pretrain_yaml(corpus: Path, steps: int = 16) -> str:
    return f"""
model:
  towers:
    text:{TOWER}
      corruption: {{type: electra.generator, rate: 0.15}}
  losses:
    - {{type: std.masked-lm, tower: text, logits: generator_logits}}
    - {{type: electra.rtd, tower: text, weight: 50}}
data: {{type: std.text-corpus, path: {corpus}, split: all, block_size: 48}}
train: {{epochs: 2, batch_size: 8, lr: 2.0e-3, seed: 0, max_steps: {steps}, log_every: 2, warmup_steps: 0}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One short pre-training run shared by this module's tests."""
    pytest.importorskip("repmix_std", reason="the config uses std's tokenizer, corpus and masked-lm")
    tmp_path = tmp_path_factory.mktemp("electra")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
        cfg = tmp_path / "electra.yaml"
        cfg.write_text(pretrain_yaml(write_corpus(tmp_path / "corpus.jsonl")))
        assert run_cli(["check", str(cfg)]) == 0
        assert run_cli(["train", str(cfg), "-o", str(tmp_path / "run")]) == 0
        yield tmp_path / "run"


def test_pretraining_lowers_both_losses_and_the_model_encodes_plain_text(trained: Path) -> None:
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("type") == "train"]
    first, last = train[0], train[-1]
    assert last["loss"] < first["loss"]
    assert last["loss1.ReplacedTokenDetectionLoss"] < first["loss1.ReplacedTokenDetectionLoss"]
    assert last["loss0.MaskedLMLoss"] < first["loss0.MaskedLMLoss"]
    model = load(str(trained / "model"))
    with torch.no_grad():
        enc = model.encode_batch("text", ["the cell protein", "mice"])  # a plain batch: no corruption
    assert "replaced" not in enc and "generator_logits" not in enc
    assert tuple(enc["token"].hidden.shape[::2]) == (2, 32) and bool(torch.isfinite(enc["token"].hidden).all())


def test_pretrained_weights_load_into_the_fine_tuning_config(trained: Path, tmp_path: Path) -> None:
    """Corruption removed, a pooler and a contrastive loss added: only the generator's weights are left over."""
    from safetensors.torch import load_file, load_model

    finetune = tmp_path / "finetune.yaml"
    finetune.write_text(f"""
model:
  towers:
    text:{TOWER}
      poolers: {{sentence: {{type: std.mean, source: token}}}}
    other: {{shared_with: text}}
  alignments:
    similarity: {{type: std.cosine, between: [text.sentence, other.sentence]}}
  losses:
    - {{type: std.mnrl, on: similarity}}
""")
    assert run_cli(["check", str(finetune)]) == 0
    model = build_model(plan_model(load_config(finetune)))
    path = str(trained / "model" / "model.safetensors")
    saved = load_file(path)
    missing, unexpected = load_model(model, path, strict=False)  # safetensors' loader, as repmix's
    assert not missing, missing
    assert unexpected and all(k.startswith("towers.text.corruptor.generator.") for k in unexpected), unexpected
    assert not [k for k in unexpected if ".embeddings." in k and "embeddings_project" not in k], \
        "the shared embeddings are saved once, under the discriminator"
    state = model.state_dict()
    for key, value in saved.items():
        if key in state:
            assert torch.equal(state[key], value)


def _check_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    pytest.importorskip("repmix_std", reason="the configs use std components")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    capsys.readouterr()
    assert run_cli(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_generator_next_to_another_encoder_is_refused_at_check(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    err = _check_error(tmp_path, """
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes}
      corruption: {type: electra.generator}
      encoder: {type: std.hf-lm, architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 16,
                num_attention_heads: 2, intermediate_size: 32}}
  losses: [{type: std.masked-lm, logits: generator_logits}]
""", capsys)
    assert "not an electra.discriminator" in err and "corruption" in err


def test_rtd_without_the_generator_is_refused_at_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _check_error(tmp_path, f"""
model:
  towers:
    text:{TOWER}
      corruption: {{type: std.mlm-mask}}
  losses: [{{type: electra.rtd, weight: 50}}]
""", capsys)
    assert "no corruption that emits them" in err and "electra.generator" in err and "model.losses.0" in err


@pytest.mark.parametrize(("block", "needle"), [
    ("{type: electra.generator, rate: 1.5}", "rate"),
    ("{type: electra.generator, mask_prob: 0.9, random_prob: 0.2}", "mask_prob + random_prob"),
    ("{type: electra.generator, num_attention_heads: 3}", "multiple"),
])
def test_bad_generator_options_are_one_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    block: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"""
model:
  towers:
    text:{TOWER}
      corruption: {block}
  losses: [{{type: electra.rtd, weight: 50}}]
""")
    pytest.importorskip("repmix_std")
    capsys.readouterr()
    code = run_cli(["check", str(cfg)])
    if code == 0:  # a size problem shows when the generator is built
        code = run_cli(["build", str(cfg), "-o", str(tmp_path / "built")])
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and "corruption" in err and "Traceback" not in err


def test_shipped_config_passes_check() -> None:
    pytest.importorskip("repmix_std")
    root = Path(__file__).resolve().parents[3]
    cfg = Path(__file__).resolve().parents[1] / "configs" / "pretrain-scifact.yaml"
    if not (root.parent / "shared" / "data" / "scifact" / "corpus.jsonl").is_file():
        pytest.skip("the shared SciFact corpus is not beside this checkout")
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert run_cli(["check", str(cfg)]) == 0
    finally:
        os.chdir(cwd)
