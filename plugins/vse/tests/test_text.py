"""The hashed n-gram tokenizer and the MLP encoder."""

from __future__ import annotations

import zlib

import torch
from repmix.sdk import Runtime
from repmix_vse.text import (
    HashedNgramTokenizer,
    NgramMLPEncoder,
    extract_ngrams,
    hash_ngram,
)


def test_word_and_char_ngrams() -> None:
    assert extract_ngrams("A b c", "word", (1, 2), True, True) == [
        (1, "a"), (1, "b"), (1, "c"), (2, "a b"), (2, "b c"), (0, "a _ c")
    ]
    assert extract_ngrams("CCO", "char", (2, 3), False, False) == [(2, "CC"), (2, "CO"), (3, "CCO")]


def test_counts_and_stable_hash() -> None:
    tok = HashedNgramTokenizer(HashedNgramTokenizer.Config(analyzer="char", ngram_range=(1, 1), lowercase=False,
                                                           buckets=10**6), Runtime())
    batch = tok(["CCO", ""])
    ids, w, m = batch["input_ids"], batch["weights"], batch["attention_mask"]
    bag = {int(i): float(x) for i, x, keep in zip(ids[0], w[0], m[0]) if keep}
    assert bag == {hash_ngram("C", 1, 10**6): 2.0, hash_ngram("O", 1, 10**6): 1.0}
    assert not m[1].any()
    assert hash_ngram("abc", 3, 97) == zlib.crc32(b"3\x1fabc") % 97


def test_encoder_is_sparse_matrix_product() -> None:
    tok = HashedNgramTokenizer(HashedNgramTokenizer.Config(buckets=64), Runtime())
    enc = NgramMLPEncoder(NgramMLPEncoder.Config(dim=5, hidden=[], normalize_input=False), Runtime(tokenizer=tok))
    batch = tok(["the cat the dog", "a bird"])
    dense = torch.zeros(2, 64)
    for i in range(2):
        for j, x, keep in zip(batch["input_ids"][i], batch["weights"][i], batch["attention_mask"][i]):
            if keep:
                dense[i, j] += x
    want = dense @ enc.embed.weight + enc.bias
    torch.testing.assert_close(enc(batch)["sentence"].hidden, want, atol=1e-6, rtol=1e-5)
