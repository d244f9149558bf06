"""The fixed decoder vocabulary W (``vocabulary_from``): the paper's precomputed output vocabulary, exact softmax.

* W = the merged tokens of the corpus seen at least ``vocabulary_min_count`` times (counted by hand
  here, from ``encode_plain`` without a vocabulary); a merged token outside W is split back into its
  base tokens (lossless: the text decodes back);
* a uniform model scores log2(V + |W|) x tokens / bytes bits per byte through std's evaluator (1e-6
  relative), with no cost for the vocabulary (it is fixed before the evaluated text is seen);
* ``next_logprobs`` is a distribution over all of V + W (sums to 1, nothing -inf) and equals the
  training forward with ``softmax: vocabulary`` (1e-5); ``softmax: batch`` trains over the batch's part of W.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from dyntok_lm_helpers import build, dynamic_tower
from repmix.sdk import ConfigError, Examples, LocatedConfig, build_component

pytest.importorskip("repmix_std", reason="the decoder tests use std's lm-tokenizer, text-corpus and evaluators")

DOCS = ["Vitamin D deficiency is associated with increased risk of fractures.",
        "Stability of the mRNA depends on regulatory proteins and the unseenword zyxomatic."]


@pytest.fixture()
def fixed(tiny_bpe: str, lm_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    source = {"type": "std.text-corpus", "path": str(lm_corpus), "split": "train"}
    return lambda **enc: build(dynamic_tower(tiny_bpe, tokenizer={"vocabulary_from": source}, **enc))


def test_vocabulary_is_the_frequent_merged_tokens(fixed, tiny_bpe: str, lm_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    model = fixed()
    tok = model.tower("text").tokenizer
    free = build(dynamic_tower(tiny_bpe)).tower("text").tokenizer  # the same merges, no vocabulary
    corpus = build_component(LocatedConfig({}), "dataset", {"type": "std.text-corpus", "path": str(lm_corpus)}, ("d",))
    counts: dict[str, int] = {}
    for text in corpus.load("train").columns["text"]:
        for t in free.encode_plain(text):
            if t >= free.base_vocab_size:
                counts[free.token_string(t)] = counts.get(free.token_string(t), 0) + 1
    assert tok.fixed_vocabulary and set(tok.registry_tokens) == {t for t, n in counts.items() if n >= 2}
    ids = tok.encode_plain(DOCS[1])
    assert all(t < tok.base_vocab_size + tok.registry_size for t in ids)  # nothing registered on the fly
    assert tok.decode(ids) == free.decode(free.encode_plain(DOCS[1]))  # split back, lossless
    assert tok.counts["split_tokens"] >= 1  # "zyxomatic." is not in W
    batch = tok(DOCS)
    assert all(t in tok.registry for t in batch.new_tokens)
    assert tok.decode(batch, 1) == tok.decode(ids)


def test_uniform_model_and_exact_softmax_over_the_vocabulary(fixed) -> None:  # type: ignore[no-untyped-def]
    model = fixed(softmax="vocabulary")
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    v, w = tok.base_vocab_size, tok.registry_size
    # the training forward scores V + W, with targets numbered in W
    batch = tok(DOCS)
    with torch.no_grad():
        out = enc(batch)
    assert out["logits"].hidden.shape[-1] == v + w and int(out["ids"].hidden.max()) < v + w
    rows = [[tok.bos_token_id, *tok.encode_plain(d)] for d in DOCS]
    lp, _ = enc.next_logprobs(torch.tensor([rows[0]]))
    assert lp.shape[-1] == v + w and torch.isfinite(lp).all()
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        logits = enc(tok([rows[0]]))["logits"].hidden
    torch.testing.assert_close(lp, torch.log_softmax(logits, -1), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        enc.lm.get_input_embeddings().weight.zero_()
    cfg = LocatedConfig({})
    got = build_component(cfg, "evaluator", {"type": "std.bits-per-byte"}, ("e",)).evaluate(model, Examples({"text": DOCS}))
    tokens = sum(len(r) - 1 for r in rows)
    n_bytes = sum(len(d.encode()) for d in DOCS)
    assert got["bits_per_byte"] == pytest.approx(math.log2(v + w) * tokens / n_bytes, rel=1e-6)
    counts = build_component(cfg, "evaluator", {"type": "dynamic-tokenization.batch-vocabulary"}, ("v",)).evaluate(
        model, Examples({"text": DOCS}))
    assert counts["vocabulary_bits_per_byte"] == 0.0 and counts["merged_tokens_per_batch"] == w
    assert counts["uniform_bits_per_byte"] == pytest.approx(got["bits_per_byte"], rel=1e-6)


def test_batch_softmax_trains_on_the_batch_part_of_the_vocabulary(fixed) -> None:  # type: ignore[no-untyped-def]
    model = fixed()  # softmax: batch
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    batch = tok(DOCS)
    with torch.no_grad():
        logits = enc(batch)["logits"].hidden
    assert logits.shape[-1] == tok.base_vocab_size + len(batch.new_tokens) < tok.base_vocab_size + tok.registry_size
    lp, _ = enc.next_logprobs(torch.tensor([[tok.bos_token_id, *tok.encode_plain(DOCS[0])]]))
    assert lp.shape[-1] == tok.base_vocab_size + tok.registry_size  # scoring: always over V + W


def test_bad_vocabulary_files(tiny_bpe: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build(dynamic_tower(tiny_bpe, tokenizer={"vocabulary_file": str(tmp_path / "none.json")}))
    foreign = tmp_path / "vocabulary.json"
    foreign.write_text(json.dumps({"fingerprint": "0" * 16, "tokens": ["▁ab"], "parts": [[5, 6]]}))
    with pytest.raises(ConfigError, match="another base tokenizer"):
        build(dynamic_tower(tiny_bpe, tokenizer={"vocabulary_file": str(foreign)}))
    with pytest.raises(ConfigError, match="needs a fixed vocabulary"):
        build(dynamic_tower(tiny_bpe, softmax="vocabulary"))
