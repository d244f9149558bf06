"""DupMAE end to end on a tiny BERT: the tied head, masking in training only, the three loss terms and their weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import (
    LocatedConfig,
    build_model,
    load_model,
    parse_yaml,
    plan_model,
    save_model,
)
from repmix_dupmae.encoder import EXTRA_MLM_LABELS
from repmix_dupmae.loss import DuplexLoss

TEXTS = ["a man is riding a horse", "the dog is eating food", "two women are talking", "a red car"]

YAML = """
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {model}, max_length: 32}}
      encoder:   {{type: dupmae.encoder, model: {model}{encoder}}}
      poolers:   {{sentence: {{type: dupmae.unified, k: 8}}, ot: {{type: dupmae.ot}}}}
  losses:
    - {{type: dupmae.duplex, on: []{loss}}}
"""


def build(model_dir: str, encoder: str = "", loss: str = ""):  # type: ignore[no-untyped-def]
    data, lines = parse_yaml(YAML.format(model=model_dir, encoder=encoder, loss=loss), "d.yaml")
    return build_model(plan_model(LocatedConfig(data, lines, "d.yaml")))


def test_head_is_tied_to_the_word_embeddings(tiny_bert_dir: str, tmp_path: Path) -> None:
    model = build(tiny_bert_dir)
    enc = model.tower("text").encoder
    emb = enc.model.get_input_embeddings()
    assert enc.head.decoder.weight is emb.weight
    assert enc.head.decoder.weight.data_ptr() == emb.weight.data_ptr()
    with torch.no_grad():
        emb.weight[7].fill_(0.25)
    assert float(enc.head.decoder.weight[7, 0].detach()) == 0.25
    # still one storage after a save / load round trip, with identical outputs
    save_model(model, tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    enc2 = loaded.tower("text").encoder
    assert enc2.head.decoder.weight.data_ptr() == enc2.model.get_input_embeddings().weight.data_ptr()
    model.eval()
    torch.testing.assert_close(torch.from_numpy(loaded.encode(TEXTS, tower="text")), torch.from_numpy(model.encode(TEXTS, tower="text")))


def test_masks_only_in_training(tiny_bert_dir: str) -> None:
    model = build(tiny_bert_dir)
    enc = model.tower("text").encoder
    model.eval()
    with torch.no_grad():
        clean = model.encode_batch("text", TEXTS)
        hf = enc.model(**{k: v for k, v in model.tower("text").tokenizer(TEXTS).items()}).last_hidden_state
    assert EXTRA_MLM_LABELS not in clean.extras
    torch.testing.assert_close(clean["token"].hidden, hf)
    model.train()
    torch.manual_seed(0)
    masked = model.encode_batch("text", TEXTS)
    labels = masked.extras[EXTRA_MLM_LABELS]
    n_real = int(masked["token"].full_mask().sum())
    assert 0 < int((labels != -100).sum()) <= round(0.3 * n_real) + len(TEXTS)


def test_loss_terms_weights_and_gradients(tiny_bert_dir: str) -> None:
    model = build(tiny_bert_dir).train()
    loss = model.losses[0]
    assert isinstance(loss, DuplexLoss)
    c = loss.config
    assert (c.decoder_weight, c.bow_weight, c.encoder_weight) == (1.0, 0.1, 1.0)
    assert (c.decoder_mask_prob, model.tower("text").encoder.config.mask_prob) == (0.5, 0.3)
    torch.manual_seed(1)
    out = model({"text": TEXTS})
    logs = {k.split(".")[-1]: v for k, v in out.logs.items() if k.startswith("loss0.DuplexLoss.")}
    assert set(logs) == {"decoder", "bow", "encoder_mlm"}
    assert float(out.loss.detach()) == pytest.approx(logs["decoder"] + 0.1 * logs["bow"] + logs["encoder_mlm"], rel=1e-5)
    out.loss.backward()
    enc = model.tower("text").encoder
    for name, p in enc.named_parameters():
        if "pooler" in name:
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert float(enc.decoder.query.weight.grad.abs().sum()) > 0  # the decoder is trained by L_dec
    # the same seed gives the same masks and the same value
    model.zero_grad()
    torch.manual_seed(1)
    assert float(model({"text": TEXTS}).loss.detach()) == pytest.approx(float(out.loss.detach()), abs=1e-6)


def test_duplex_needs_a_dupmae_encoder(tiny_bert_dir: str) -> None:
    from repmix.sdk import InputError

    text = f"""
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {tiny_bert_dir}, max_length: 32}}
      encoder:   {{type: hf-transformer, model: {tiny_bert_dir}}}
  losses:
    - {{type: dupmae.duplex, on: [], towers: [text]}}
"""
    data, lines = parse_yaml(text, "d.yaml")
    model = build_model(plan_model(LocatedConfig(data, lines, "d.yaml")))
    with pytest.raises(InputError, match="needs tower 'text' encoded by dupmae.encoder"):
        model({"text": TEXTS})


def test_unified_embedding_layout(tiny_bert_dir: str) -> None:
    model = build(tiny_bert_dir).eval()
    with torch.no_grad():
        enc = model.encode_batch("text", TEXTS)
    unified = enc["sentence"].hidden
    d = enc["token"].dim
    cls = torch.nn.functional.normalize(enc["token"].hidden[:, 0], dim=-1)
    torch.testing.assert_close(unified[:, :d], cls)
    ot_part = unified[:, d:]
    assert ot_part.shape[1] == enc["vocab"].dim
    assert int((ot_part != 0).sum(dim=1).max()) <= 8  # top-k sparse
    top = enc["ot"].hidden.topk(8, dim=-1).indices
    assert bool((ot_part.gather(1, top) != 0).all())
