"""Issue 13's bad inputs: each gives one clear message or a documented, counted fallback."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import InputError, Runtime

from repmix_hat.model import HATEncoder
from repmix_hat.splitter import Segmenter, split, split_with_limit
from repmix_hat.tokenizer import HATTokenizer


def _tok(**cfg: object) -> HATTokenizer:
    return HATTokenizer(HATTokenizer.Config(**cfg), Runtime())


def test_empty_string_is_bos_eos_and_counted() -> None:
    tok = _tok()
    batch = tok(["", "a"])
    assert batch["input_ids"][0, :2].tolist() == [tok.bos_token_id, tok.eos_token_id]
    assert batch["attention_mask"][0].tolist() == [1, 1, 0]
    assert batch["hat_words"][0, :2].tolist() == [0, 1]  # two special-token words, no text word
    assert tok.counts["empty"] == 1
    assert split("") == [] and split_with_limit("", 4) == [] and tok.encode_plain("") == []


def test_whitespace_only_is_whitespace_words_and_counted() -> None:
    tok = _tok()
    assert split("   ") == ["   "] and split("\n\n") == ["\n", "\n"] and split(" \t ") == [" ", "\t", " "]
    batch = tok(["   ", "\n\n"])
    assert batch["hat_words"][0, :5].tolist() == [0, 1, 1, 1, 2]  # [BOS] "   " [EOS]
    assert batch["hat_words"][1, :4].tolist() == [0, 1, 2, 3]  # [BOS] "\n" "\n" [EOS]
    assert tok.counts["whitespace_only"] == 2


def test_invalid_utf8_bytes_kept_as_single_byte_words_and_counted() -> None:
    tok = _tok()
    data = b"ab\xffc\xc3(d\xe2\x82"  # a stray byte, a broken 2-byte sequence, a truncated 3-byte one
    batch = tok([data])
    ids = batch["input_ids"][0].tolist()
    assert ids[1:-1] == list(data)
    words = batch["hat_words"][0].tolist()
    # \xff, \xc3, \xe2 and \x82 are invalid: each is a word of its own
    for pos in (3, 5, 8, 9):
        assert words.count(words[pos]) == 1
    assert tok.counts["invalid_bytes"] == 4


def test_invalid_utf8_error_names_the_byte() -> None:
    tok = _tok(invalid_utf8="error")
    with pytest.raises(InputError, match=r"item 1 is not valid UTF-8: byte offset 2 holds b'\\xff'"):
        tok([b"ok", b"ab\xffc"])


def test_word_longer_than_the_limit_is_cut_and_counted() -> None:
    tok = _tok(max_word_size=4)
    assert tok.split_with_limit("Hello, world!") == [b"Hell", b"o,", b" wor", b"ld!"]
    batch = tok(["Hello, world!"])
    sizes = torch.bincount(batch["hat_words"][0]).tolist()
    assert sizes == [1, 4, 2, 4, 3, 1]  # [BOS] Hell o, ␣wor ld! [EOS]
    assert tok.counts["long_word_cuts"] == 2
    assert Segmenter("text", 4).segment(list("abcdefghij".encode())).counts["long_word_cuts"] == 2


def test_max_word_size_below_one_character_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4 bytes"):
        Segmenter("text", 3)


def test_other_items_are_refused() -> None:
    tok = _tok()
    with pytest.raises(InputError, match="expected a string, bytes or a list of ids, got float"):
        tok([1.5])
    with pytest.raises(InputError, match="empty batch"):
        tok([])
    with pytest.raises(InputError, match="ids outside"):
        tok([[1, 2, 999]])


def test_encoder_refuses_a_non_byte_tokenizer_and_left_padding() -> None:
    from repmix.sdk import ConfigError

    class Words:
        vocab_size = 300

        @staticmethod
        def token_bytes(i: int) -> bytes:
            return b"w"

    with pytest.raises(ConfigError, match="ids 0-255 are not the bytes"):
        HATEncoder(HATEncoder.Config(), Runtime(tokenizer=Words()))
    enc = HATEncoder(HATEncoder.Config(hidden_size=16, heads=2, byte_hidden_size=8, byte_heads=2),
                     Runtime(tokenizer=_tok()))
    with pytest.raises(InputError, match="right-padded"):
        enc({"input_ids": torch.tensor([[256, 97, 98]]), "attention_mask": torch.tensor([[0, 1, 1]])})
