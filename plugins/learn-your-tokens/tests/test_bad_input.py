"""Issue 13's bad input, one clear message or a documented, counted fallback each."""

from __future__ import annotations

import warnings

import pytest
import torch
from lyt_helpers import tiny_model
from repmix.sdk import ConfigError, InputError, LocatedConfig, build_model, plan_model


def tokenizer(**cfg):  # type: ignore[no-untyped-def]
    tok, _ = tiny_model(**cfg)
    return tok


def test_empty_string_is_one_message() -> None:
    tok = tokenizer()
    assert tok.check_item("") == "empty string: there is no byte to predict and no word to pool"
    assert tok.check_item(b"") is not None
    with pytest.raises(InputError, match=r"item 1 of the batch: empty string"):
        tok(["fine", ""])
    assert tok.encode_plain("") == []  # a document with no bytes scores nothing (std's convention)
    with pytest.raises(InputError, match="empty batch"):
        tok([])


def test_whitespace_only_text_is_one_counted_whitespace_word() -> None:
    tok = tokenizer(max_word_bytes=4)
    assert tok.check_item("   \n ") is None
    with pytest.warns(UserWarning, match="whitespace-only text is one whitespace word"):
        batch = tok(["   ", "\t"])
    assert tok.fallbacks["whitespace_only"] == 2
    starts = tok.word_starts(batch["input_ids"], batch["attention_mask"])
    assert starts[0].tolist() == [True, True, False, False, True]  # [BOS] '   ' [EOS]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # later fallbacks are counted, not reported again
        tok.encode_plain("    ")
    assert tok.fallbacks["whitespace_only"] == 3 and tok.fallbacks["long_words"] == 0
    with pytest.warns(UserWarning, match="a word of 6 bytes was split"):
        tok.encode_plain("      ")  # 6 spaces > 4: one whitespace word, cut once
    assert tok.fallbacks["whitespace_only"] == 4
    assert tok.fallbacks["long_words"] == 1 and tok.fallbacks["extra_chunks"] == 1


def test_invalid_utf8_bytes_is_one_message_with_the_offset() -> None:
    tok = tokenizer()
    bad = b"caf\xe9 au lait"
    message = "invalid UTF-8: byte offset 3 holds b'\\xe9' (invalid continuation byte)"
    assert tok.check_item(bad) == message
    with pytest.raises(InputError, match=r"item 0 of the batch: invalid UTF-8: byte offset 3"):
        tok([bad])
    with pytest.raises(InputError, match="invalid UTF-8: byte offset 3"):
        tok.encode_plain(bad)
    assert "not encodable as UTF-8" in tok.check_item("x\udcff")  # a lone surrogate has no UTF-8 bytes
    good = tok(["café".encode()])  # valid UTF-8 bytes are read like the string
    assert torch.equal(good["input_ids"], tok(["café"])["input_ids"])


def test_a_word_longer_than_the_limit_is_split_into_counted_chunks() -> None:
    tok = tokenizer(max_word_bytes=8)
    word = "immunohistochemistry"  # 20 bytes: chunks of 8, 8, 4
    with pytest.warns(UserWarning, match="a word of 20 bytes was split into chunks of max_word_bytes 8"):
        batch = tok([word])
    assert tok.fallbacks["long_words"] == 1 and tok.fallbacks["extra_chunks"] == 2
    starts = tok.word_starts(batch["input_ids"], batch["attention_mask"])[0].tolist()
    assert [i for i, s in enumerate(starts) if s] == [0, 1, 9, 17, 21]  # BOS, 3 chunks, EOS


def test_a_long_word_can_be_refused_instead() -> None:
    tok = tokenizer(max_word_bytes=8, long_words="error")
    assert tok.check_item("a immunohistochemistry b") == (
        "a word of 21 bytes is longer than max_word_bytes 8 (long_words: error)")  # " immuno...": its space too
    with pytest.raises(InputError, match="a word of 20 bytes is longer than max_word_bytes 8"):
        tok.encode_plain("immunohistochemistry")


def test_smiles_bytes_the_regex_does_not_match_are_counted() -> None:
    tok = tokenizer(split="smiles")
    with pytest.warns(UserWarning, match="SMILES regex does not match"):
        tok.encode_plain("CC x")
    assert tok.fallbacks["smiles_unmatched_bytes"] == 2  # the space and the 'x'


def test_other_items_and_ids() -> None:
    tok = tokenizer()
    assert tok.check_item(3.5) == "expected a string, UTF-8 bytes or a list of token ids, got float"
    assert tok.check_item([1, 999]).startswith("token id 999 is not an id of this tokenizer")
    with pytest.raises(InputError, match="more than max_length 96"):
        tok([[65] * 97])


def build(tokenizer: dict, encoder: dict):  # type: ignore[no-untyped-def]
    cfg = {"model": {"towers": {"text": {"tokenizer": tokenizer, "encoder": encoder}}}}
    return build_model(plan_model(LocatedConfig(cfg)))


def test_encoder_needs_a_word_tokenizer() -> None:
    with pytest.raises(ConfigError, match="tower's tokenizer must define the words"):
        build({"type": "std.lm-tokenizer", "algorithm": "bytes", "max_length": 64},
              {"type": "learn-your-tokens.word-pooled-lm", "dim": 16, "heads": 2, "max_positions": 64})


def test_rows_longer_than_the_model_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_length 128 exceeds the model's max_positions 64"):
        build({"type": "learn-your-tokens.word-bytes", "max_length": 128},
              {"type": "learn-your-tokens.word-pooled-lm", "dim": 16, "heads": 2, "max_positions": 64})
    _, enc = tiny_model()
    long = torch.full((1, 97), 65)
    with pytest.raises(InputError, match="a row of 97 ids is longer than max_positions 96"):
        enc({"input_ids": long, "attention_mask": torch.ones_like(long)})
    with pytest.raises(InputError, match="97 new ids in one call, more than the model's 96 positions"):
        enc.next_logprobs(long)
    _, cache = enc.next_logprobs(long[:, :96])
    out, cache = enc.next_logprobs(long[:, 96:], cache)  # generation past the context: a sliding window
    assert out.shape == (1, 1, 261) and len(cache[0]) == 97
    torch.testing.assert_close(out[0, -1], enc.next_logprobs(long[:, 1:])[0][0, -1], atol=1e-5, rtol=0)
