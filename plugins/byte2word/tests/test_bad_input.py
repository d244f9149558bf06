"""Bad configurations and inputs: one clear message each (the tokenizer's own are tested in learn-your-tokens)."""

from __future__ import annotations

import pytest
import torch
from b2w_helpers import tiny_model
from repmix.sdk import ConfigError, InputError, LocatedConfig, build_model, plan_model


def build(tokenizer: dict, encoder: dict):  # type: ignore[no-untyped-def]
    return build_model(plan_model(LocatedConfig({"model": {"towers": {"text": {"tokenizer": tokenizer,
                                                                               "encoder": encoder}}}})))


def test_needs_a_tokenizer_that_defines_words() -> None:
    with pytest.raises(ConfigError, match="its tower's tokenizer must define the words"):
        build({"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64},
              {"type": "byte2word.byte2word-lm", "dim": 16, "heads": 2, "max_positions": 64})


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_length 128 exceeds the model's max_positions 64"):
        build({"type": "learn-your-tokens.word-bytes", "max_length": 128},
              {"type": "byte2word.byte2word-lm", "dim": 16, "heads": 2, "max_positions": 64})
    with pytest.raises(ConfigError, match="embed_heads 5 must divide byte_dim 48"):
        build({"type": "learn-your-tokens.word-bytes", "max_length": 64},
              {"type": "byte2word.byte2word-lm", "embed_heads": 5, "max_positions": 64})


def test_bad_inputs() -> None:
    tok, enc = tiny_model()
    with pytest.raises(InputError, match="empty string"):
        tok(["", "x"])
    with pytest.raises(InputError, match="invalid UTF-8: byte offset 0"):
        tok([b"\xff"])
    long = torch.full((1, 97), 65)
    with pytest.raises(InputError, match="a row of 97 ids is longer than max_positions 96"):
        enc({"input_ids": long, "attention_mask": torch.ones_like(long)})
    with pytest.raises(InputError, match="97 new ids in one call"):
        enc.next_logprobs(long)
    with pytest.raises(InputError, match="the cache holds 1 rows but 2 new rows"):
        enc.next_logprobs(long[:, :3].repeat(2, 1), [[65, 66]])
