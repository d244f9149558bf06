"""Faithfulness of dynamic tokenization against the official code's README and its stated invariants.

* the README example, exactly: the two biomedical sentences take 36 tokens under Mistral-7B-v0.1
  (the padded batch the README prints) and 20 after 10 merges (each sequence framed <s> ... </s>,
  as ``tokenize_batch(mlm=True)`` does), with the README's token strings;
* the incremental merge loop equals the official loop (``get_most_frequent_pair`` + ``merge_pair``,
  ported line for line in :func:`reference_merges`) on random batches: same merges, same tokens;
* each merge removes exactly as many tokens as occurrences it merged (Δtokens);
* lossless: the parts of the merged sequence are the base ids, so decoding gives the base text back
  (for the SentencePiece toy, the input string itself);
* no merge crosses a pretoken boundary;
* with ``max_merges: 0`` the encoder is the original model (std's hf-transformer) to 1e-6.
"""

from __future__ import annotations

import random

import pytest
import torch
from repmix.sdk import Runtime, load_component_class
from repmix_dynamic_tokenization.boundaries import metaspace_rules, wordpiece_rules
from repmix_dynamic_tokenization.merging import dynamic_merges, reference_merges

#: The official README's example batch and its published tokenizations (Mistral-7B-v0.1).
README_TEXTS = [
    "Ribonucleoprotein particles regulate mRNA stability.",
    "mRNA stability is modulated by ribonucleoprotein factors.",
]
README_INITIAL = [
    ["</s>", "<s>", "▁R", "ib", "on", "uc", "le", "op", "rote", "in", "▁particles", "▁reg", "ulate", "▁m", "R", "NA",
     "▁stability", "."],
    ["<s>", "▁m", "R", "NA", "▁stability", "▁is", "▁mod", "ulated", "▁by", "▁rib", "on", "uc", "le", "op", "rote",
     "in", "▁factors", "."],
]
# the README prints the hypernetwork tokenizer's byte-level strings: Ġ is the space, written ▁ here
README_DYNAMIC = [
    ["<s>", "ĠRibonucleoprotein", "Ġparticles", "Ġregulate", "ĠmRNA", "Ġstability", ".", "</s>"],
    ["<s>", "ĠmRNA", "Ġstability", "Ġis", "Ġmod", "ulated", "Ġby", "Ġrib", "onucleoprotein", "Ġfactors", ".", "</s>"],
]


def build(kind: str, name: str, runtime: Runtime | None = None, **config):  # type: ignore[no-untyped-def]
    cls = load_component_class(kind, name)
    return cls(cls.Config(**config), runtime or Runtime())


def test_readme_example_36_to_20_tokens_with_10_merges(mistral_toy: str) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=mistral_toy, max_merges=10)
    # the README's initial tokenization: <s> + tokens, left-padded with </s> (Mistral's pad = eos)
    plain = [e.tokens for e in tok.backend.encode_batch(README_TEXTS, add_special_tokens=False)]
    width = max(len(t) for t in plain) + 1
    padded = [["</s>"] * (width - 1 - len(t)) + ["<s>", *t] for t in plain]
    assert padded == README_INITIAL
    assert sum(len(t) for t in padded) == 36
    batch = tok(README_TEXTS)
    assert batch.tokens == [[t.replace("Ġ", "▁") for t in seq] for seq in README_DYNAMIC]
    assert sum(len(t) for t in batch.tokens) == 20
    assert len(batch.merges) == 10
    assert [(m.left, m.right) for m in batch.merges[:3]] == [("on", "uc"), ("onuc", "le"), ("onucle", "op")]
    # Δtokens: the 33 content tokens (+2 x <s></s>) lose exactly the 17 merged occurrences
    base = sum(batch.base_lengths)
    assert base - sum(len(t) for t in batch.tokens) == sum(m.occurrences for m in batch.merges) == 17
    for i, text in enumerate(README_TEXTS):
        assert tok.decode(batch, i) == text  # lossless, to the character


def _random_batch(rng: random.Random, alphabet: list[str], sequences: int) -> list[list[str]]:
    return [[rng.choice(alphabet) for _ in range(rng.randint(0, 14))] for _ in range(sequences)]


@pytest.mark.parametrize("seed", range(12))
def test_incremental_loop_equals_the_official_loop(seed: int) -> None:
    rng = random.Random(seed)
    # WordPiece: word starts and ## continuations; ties and overlaps ("##a ##a ##a") are frequent
    alphabet = ["[CLS]", "a", "b", "##a", "##b", "##c", "##ab"]
    valid, concat = wordpiece_rules({"[CLS]", "[SEP]"})
    batch = _random_batch(rng, alphabet, rng.randint(1, 6))
    for budget in (0, 1, 3, 7, None):
        ref_tokens, ref_pairs = reference_merges(batch, is_valid=valid, concat=concat, max_merges=budget)
        res = dynamic_merges(batch, [[(j,) for j in range(len(s))] for s in batch], is_valid=valid, concat=concat,
                             max_merges=budget)
        assert res.tokens == ref_tokens
        assert [(m.left, m.right) for m in res.merges] == ref_pairs
    # SentencePiece-style tokens with the official pretoken rule
    alphabet = ["▁x", "y", "z", "▁", ".", "yz", "<s>"]
    valid, concat = metaspace_rules({"<s>"})
    batch = _random_batch(rng, alphabet, rng.randint(1, 6))
    ref_tokens, ref_pairs = reference_merges(batch, is_valid=valid, concat=concat)
    res = dynamic_merges(batch, [[(j,) for j in range(len(s))] for s in batch], is_valid=valid, concat=concat)
    assert res.tokens == ref_tokens and [(m.left, m.right) for m in res.merges] == ref_pairs


def test_overlapping_pair_is_merged_left_to_right() -> None:
    """(##a, ##a) occurs twice, overlapping, in ##a ##a ##a: counted twice, merged once (left to right)."""
    valid, concat = wordpiece_rules(set())
    res = dynamic_merges([["a", "##a", "##a", "##a"]], [[(0,), (1,), (2,), (3,)]],
                         is_valid=valid, concat=concat, max_merges=1)
    assert res.tokens == [["a", "##aa", "##a"]] and res.parts == [[(0,), (1, 2), (3,)]]
    assert (res.merges[0].frequency, res.merges[0].occurrences) == (2, 1)


def test_delta_tokens_and_losslessness_on_minilm(minilm_dir: str, shared_data_dir) -> None:  # type: ignore[no-untyped-def]
    path = shared_data_dir / "scifact" / "corpus.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    import json

    rows = [json.loads(line) for line in path.open()][:48]
    texts = [r["title"] + " " + r["text"] for r in rows]
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=str(minilm_dir), max_merges=None)
    base_tokens, base_ids, _ = tok.merge(texts)
    running = [list(s) for s in base_tokens]
    total = sum(len(s) for s in running)
    for budget in (1, 5, 50, None):
        res = dynamic_merges(base_tokens, [[(i,) for i in s] for s in base_ids], is_valid=tok.is_valid,
                             concat=tok.concat, max_merges=budget)
        assert total - res.num_tokens == sum(m.occurrences for m in res.merges)
        # lossless: the parts, in order, are the base ids
        assert [[i for p in seq for i in p] for seq in res.parts] == base_ids
    # step by step: each merge removes exactly its occurrences
    previous = total
    for k in range(1, 8):
        res = dynamic_merges(base_tokens, [[(i,) for i in s] for s in base_ids], is_valid=tok.is_valid,
                             concat=tok.concat, max_merges=k)
        assert previous - res.num_tokens == res.merges[-1].occurrences
        previous = res.num_tokens
    batch = tok(texts)
    for i, seq in enumerate(batch.tokens):
        # no merge crosses a pretoken: a merged token is one word start + continuations of that word
        for tok_str, parts in zip(seq, batch.parts[i], strict=True):
            pieces = [tok.token_strings[p] for p in parts]
            assert all(p.startswith("##") for p in pieces[1:]), pieces
            assert tok_str == pieces[0] + "".join(p[2:] for p in pieces[1:])
        assert tok.decode(batch, i) == tok.backend.decode(base_ids[i], skip_special_tokens=True)
    assert 0.05 < 1 - tok.counts["dynamic_tokens"] / tok.counts["base_tokens"] < 0.6


def test_no_merge_crosses_a_pretoken_in_the_sentencepiece_toy(mistral_toy: str) -> None:
    from tokenizers import pre_tokenizers

    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=mistral_toy, max_merges=None)
    batch = tok(README_TEXTS)
    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for seq in batch.tokens:
        for t in seq:
            if t not in tok.special_tokens:
                assert len(split.pre_tokenize_str(t.replace("▁", " "))) == 1, t
    assert batch.tokens[0][1:-1] == ["▁Ribonucleoprotein", "▁particles", "▁regulate", "▁mRNA", "▁stability", "."]


def test_word_level_merging_does_not_depend_on_the_batch(tiny_bert_dir: str) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir)
    texts = ["the horseman rides", "seafood and horseman", "chlorobenzene"]
    together = tok(texts).tokens
    assert [tok([t]).tokens[0] for t in texts] == together
    assert "horseman" in together[0]


def test_no_merges_is_exactly_the_original_model(tiny_bert_dir: str) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir, max_merges=0)
    enc = build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
                embeddings="mean").eval()
    std_tok = build("tokenizer", "std.hf-tokenizer", model=tiny_bert_dir)
    ref = build("encoder", "std.hf-transformer", Runtime(tokenizer=std_tok), model=tiny_bert_dir).eval()
    texts = ["the horseman is riding", "chlorobenzene", ""]
    a, b = tok(texts), std_tok(texts)
    assert torch.equal(a.input_ids, b["input_ids"]) and not a.new_tokens
    with torch.no_grad():
        torch.testing.assert_close(enc(a)["token"].hidden, ref(b)["token"].hidden, atol=1e-6, rtol=0)


def test_mean_embedding_of_a_new_token_is_the_mean_of_its_pieces(tiny_bert_dir: str) -> None:
    tok = build("tokenizer", "dynamic-tokenization.dynamic-bpe", model=tiny_bert_dir)
    enc = build("encoder", "dynamic-tokenization.dynamic-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
                embeddings="mean").eval()
    batch = tok(["the chlorobenzene ring"])
    table = enc.model.get_input_embeddings().weight
    j = batch.new_tokens.index("chlorobenzene")
    emb = enc._new_embeddings(batch, table)
    torch.testing.assert_close(emb[j], table[list(batch.new_parts[j])].mean(0))
