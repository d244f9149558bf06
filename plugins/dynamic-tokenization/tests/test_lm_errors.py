"""Bad input on the decoder side: one clear message each, or a documented and counted fallback."""

from __future__ import annotations

import logging

import pytest
import torch
from dyntok_lm_helpers import ARCH, build, dynamic_tower
from repmix.sdk import (
    ConfigError,
    Examples,
    InputError,
    LocatedConfig,
    build_component,
    build_model,
    plan_model,
)

pytest.importorskip("repmix_std", reason="the decoder tests use std's lm-tokenizer")


def _model(tiny_bpe: str, **kw):  # type: ignore[no-untyped-def]
    model = build(dynamic_tower(tiny_bpe, **kw))
    return model, model.tower("text").tokenizer, model.tower("text").encoder


def test_empty_and_whitespace_documents(tiny_bpe: str) -> None:
    model, tok, enc = _model(tiny_bpe)
    assert tok.encode_plain("") == []
    spaces = tok.encode_plain("  \n ")
    assert tok.decode(spaces) == tok.backend.decode(tok.plain_backend.encode("  \n ", add_special_tokens=False).ids)
    batch = tok(["", "   ", "Vitamin D"])  # special tokens alone, counted (the encoder-side fallback)
    assert tok.counts["empty_texts"] == 2 and batch.tokens[0] == ["[BOS]", "[EOS]"]
    with torch.no_grad():
        assert torch.isfinite(enc(batch)["logits"].hidden).all()
    # std's evaluator counts an empty document's bytes (none) and scores no token for it
    bpb = build_component(LocatedConfig({}), "evaluator", {"type": "std.bits-per-byte"}, ("e",))
    got = bpb.evaluate(model, Examples({"text": ["", "Vitamin D deficiency."]}))
    assert got["bytes"] == len("Vitamin D deficiency.") and got["tokens"] == len(tok.encode_plain("Vitamin D deficiency."))


def test_long_text_is_truncated_and_counted(tiny_bpe: str, caplog: pytest.LogCaptureFixture) -> None:
    _, tok, enc = _model(tiny_bpe)
    long = "Vitamin D deficiency is associated with increased risk of fractures. " * 20
    with caplog.at_level(logging.WARNING, logger="repmix_dynamic_tokenization"):
        batch = tok([long, "short text"])
        tok([long])
    assert tok.counts["truncated_texts"] == 2
    assert sum("longer than max_length" in r.message for r in caplog.records) == 1  # warned once
    assert batch.base_lengths[0] == 64  # truncated to max_length base tokens, then merged
    # the LM path never truncates: encode_plain reads the whole document (the evaluators cut windows)
    assert sum(len(tok.parts_of(t)) for t in tok.encode_plain(long)) > 64
    with torch.no_grad():
        assert enc(batch)["logits"].hidden.shape[1] == batch.input_ids.shape[1]


def test_bad_id_rows(tiny_bpe: str) -> None:
    _, tok, enc = _model(tiny_bpe)
    with pytest.raises(InputError, match="more than max_length 64"):
        tok([[5] * 65])
    with pytest.raises(InputError, match="neither a base id"):
        tok([[5, tok.base_vocab_size + 10_000]])
    with pytest.raises(InputError, match="empty list of token ids"):
        tok([[]])
    with pytest.raises(InputError, match="expected a string or a list of token ids"):
        tok([3.5])
    with pytest.raises(InputError, match="empty batch"):
        tok([])
    with pytest.raises(InputError, match="neither a base id"):
        enc.next_logprobs(torch.tensor([[tok.bos_token_id, tok.base_vocab_size + 10_000]]))
    with pytest.raises(InputError, match="dynamic-bpe batch"):
        enc({"input_ids": torch.zeros(1, 3, dtype=torch.long)})


def test_bad_configs(tiny_bpe: str) -> None:
    def plan(tower):  # type: ignore[no-untyped-def]
        return build_model(plan_model(LocatedConfig({"model": {"towers": {"text": tower},
                                                               "losses": [{"type": "std.causal-lm"}]}})))

    bytes_tower = dynamic_tower(tiny_bpe)
    bytes_tower["tokenizer"]["base"] = {"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64}
    with pytest.raises(ConfigError, match="not a subword tokenizer dynamic-bpe can merge"):
        plan(bytes_tower)
    both = dynamic_tower(tiny_bpe)
    both["tokenizer"]["model"] = tiny_bpe
    with pytest.raises(ConfigError, match="give the base tokenizer once"):
        plan(both)
    with pytest.raises(ConfigError, match="comes from the tokenizer"):
        plan(dynamic_tower(tiny_bpe, architecture={**ARCH, "vocab_size": 500}))
    with pytest.raises(ConfigError, match="exceeds the model's 32 positions"):
        plan(dynamic_tower(tiny_bpe, architecture={**ARCH, "n_positions": 32}))
    std_tok = {"type": "std.lm-tokenizer", "algorithm": "bpe", "file": tiny_bpe, "max_length": 64}
    with pytest.raises(ConfigError, match="must be dynamic-tokenization.dynamic-bpe"):
        plan({"tokenizer": std_tok, "encoder": {"type": "dynamic-tokenization.dynamic-lm", "architecture": ARCH}})
    with pytest.raises(ConfigError, match="does not divide the width"):
        plan(dynamic_tower(tiny_bpe, embeddings="hypernetwork", hypernetwork_heads=3))
