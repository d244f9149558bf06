"""Faithfulness to Learn Your Tokens (Thawani et al. 2023; eTok newmodel.py) and to the CausalLM contract.

The paper's stated invariants (docs/plugins/learn-your-tokens.md, "Faithfulness"):

* the word encoder's mask is block-diagonal, so word i's vector is unchanged when the bytes
  of another word change: exact (torch.equal) when the other word keeps its length, 1e-6
  otherwise (the flat sequence then has another length, so float32 sums run in another order);
* the backbone's sequence length is the number of words, not of bytes.

And, for the byte-level CausalLM the grid scores: the logits predicting byte t read bytes < t
only (1e-5), the key-value-free cache gives the full forward's log-probs (1e-5), and the word
rules are prefix rules reproducing the reference SMILES regex of Schwaller et al. (2019) exactly.
"""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

import pytest
import torch
from lyt_helpers import ids_of, tiny_model
from repmix.sdk.words import word_layout
from repmix_learn_your_tokens.words import SMILES_PATTERN, row_word_starts, split_words

TEXT = "Vitamin D deficiency (p < 0.05) is associated with bone loss."


def words_of(tok, ids: torch.Tensor) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """(start, end) of each word of a [1, T] row."""
    starts = tok.word_starts(ids)[0].tolist()
    bounds = [i for i, s in enumerate(starts) if s] + [len(starts)]
    return list(itertools.pairwise(bounds))


@pytest.mark.parametrize("num_prefix", [1, 3])
def test_word_vector_is_invariant_to_other_words_bytes(num_prefix: int) -> None:
    tok, enc = tiny_model(num_prefix=num_prefix)
    ids = ids_of(tok, TEXT)
    spans = words_of(tok, ids)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        base = enc(batch)["word"].hidden[0]
    target = 2  # " deficiency" -> same-length garbage, then a shorter word
    s, e = spans[target]
    same = ids.clone()
    same[0, s + 1 : e] = torch.tensor(list(b"zqxwvutsr"[: e - s - 1]))
    shorter = torch.cat([ids[:, : s + 1], torch.tensor([list(b"ok")]), ids[:, e:]], dim=1)
    with torch.no_grad():
        same_out = enc({"input_ids": same, "attention_mask": torch.ones_like(same)})["word"].hidden[0]
        short_out = enc({"input_ids": shorter, "attention_mask": torch.ones_like(shorter)})["word"].hidden[0]
    assert len(words_of(tok, same)) == len(spans) == len(words_of(tok, shorter))
    for i in range(len(spans)):
        if i == target:
            assert not torch.allclose(same_out[i], base[i])
            continue
        assert torch.equal(same_out[i], base[i]), i
        torch.testing.assert_close(short_out[i], base[i], atol=1e-6, rtol=0)


def test_word_encoder_mask_is_block_diagonal() -> None:
    tok, _ = tiny_model()
    ids = ids_of(tok, TEXT)
    lay = word_layout(tok.word_starts(ids), torch.ones_like(ids, dtype=torch.bool), 2)
    allowed = lay.attention(causal=False)[0]
    group = lay.group[0]
    reference = (group[:, None] == group[None, :]) & (group[None, :] >= 0) | torch.eye(len(group), dtype=torch.bool)
    assert torch.equal(allowed, reference)
    causal = lay.attention(causal=True)[0]
    assert torch.equal(causal, (reference & torch.ones_like(reference).tril()) | torch.eye(len(group), dtype=torch.bool))
    # the CLS slots of word j come right before its bytes, and every byte maps back to its own slot
    for j, (s, e) in enumerate(words_of(tok, ids)):
        slots = lay.prefix_at[0, j].tolist()
        assert slots == [s + 2 * j, s + 2 * j + 1]
        assert lay.byte_at[0, s:e].tolist() == list(range(s + 2 * j + 2, e + 2 * j + 2))


def test_backbone_sequence_length_is_the_number_of_words() -> None:
    tok, enc = tiny_model()
    seen: list[tuple[int, ...]] = []
    handle = enc.backbone[0].register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    batch = tok([TEXT, "Hi there"])
    with torch.no_grad():
        enc(batch)
    handle.remove()
    n_words = [len(split_words(TEXT.encode(), "punctuation", 8)) + 2, len(split_words(b"Hi there", "punctuation", 8)) + 2]
    assert seen == [(2, max(n_words), 32)]  # [B, W, D]: BOS and EOS are words of their own
    assert max(n_words) < batch["input_ids"].shape[1]


@pytest.mark.parametrize("split,text", [
    ("punctuation", TEXT),
    ("whitespace", "Vitamin D deficiency is  associated with bone loss in older adults"),
    ("smiles", "CC(=O)OC(CC(=O)[O-])C[N+](C)(C)CBr.Cl%12"),
])
def test_prediction_of_byte_t_does_not_see_bytes_from_t_on(split: str, text: str) -> None:
    tok, enc = tiny_model(split=split, max_word_bytes=6)
    ids = ids_of(tok, text)
    full, _ = enc.next_logprobs(ids)
    rng = random.Random(0)
    alphabet = list(b" (.,CcBrl[]%1aZ") + [rng.randrange(256) for _ in range(8)]
    n = ids.shape[1]
    cuts = [t for t in range(1, n) for _ in range(2)]  # the future replaced twice per cut, word boundaries included
    alts = ids.repeat(len(cuts), 1)
    for r, t in enumerate(cuts):
        alts[r, t:] = torch.tensor([rng.choice(alphabet) for _ in range(n - t)])
    out, _ = enc.next_logprobs(alts)  # one batch: rows differ only after their cut
    for r, t in enumerate(cuts):
        torch.testing.assert_close(out[r, :t], full[0, :t], atol=1e-5, rtol=0)  # logits at t-1 predict byte t


def test_training_forward_is_causal_too() -> None:
    """The training path (forward, logits granularity) equals the scoring path and is causal."""
    tok, enc = tiny_model()
    ids = ids_of(tok, TEXT)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        logits = enc(batch)["logits"].hidden
    lp, _ = enc.next_logprobs(ids)
    torch.testing.assert_close(torch.log_softmax(logits, -1), lp, atol=1e-5, rtol=0)
    emb = enc.byte_embedding
    grads = []
    handle = emb.register_forward_hook(lambda m, a, out: out.retain_grad() or grads.append(out))
    enc.train(False)
    out = enc(batch)["logits"].hidden
    out[0, 20].sum().backward()  # the prediction of byte 21
    handle.remove()
    for g in grads:  # the encoder's and the decoder's byte inputs
        assert torch.all(g.grad[0, 21:] == 0)


def test_cache_and_padding_give_the_full_forward() -> None:
    tok, enc = tiny_model()
    ids = ids_of(tok, TEXT)
    full, _ = enc.next_logprobs(ids)
    a, cache = enc.next_logprobs(ids[:, :17])
    b, cache = enc.next_logprobs(ids[:, 17:30], cache)
    c, _ = enc.next_logprobs(ids[:, 30:], cache)
    torch.testing.assert_close(torch.cat([a, b, c], 1), full, atol=1e-5, rtol=0)
    short = ids_of(tok, "Hi there")
    both = torch.zeros(2, ids.shape[1], dtype=torch.long)  # right-padded with 0, as std's evaluators do
    both[0], both[1, : short.shape[1]] = ids[0], short[0]
    mask = torch.zeros_like(both)
    mask[0], mask[1, : short.shape[1]] = 1, 1
    batched, _ = enc.next_logprobs(both, attention_mask=mask)
    alone, _ = enc.next_logprobs(short)
    torch.testing.assert_close(batched[0], full[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched[1, : short.shape[1]], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("split", ["whitespace", "punctuation", "smiles"])
def test_word_rules_are_prefix_rules(split: str) -> None:
    rng = random.Random(1)
    alphabet = list(b" \n\t(),.;-CcBrlNO[]%0123456789=#@+aZ") + [200, 195, 169, 256, 258, 259]
    for _ in range(200):
        row = [rng.choice(alphabet) for _ in range(rng.randrange(1, 40))]
        full, _ = row_word_starts(row, split, 5)
        for t in range(1, len(row)):
            assert row_word_starts(row[:t], split, 5)[0] == full[:t]


REFERENCE_SMILES = [
    "CC(=O)OC(CC(=O)[O-])C[N+](C)(C)C", "C1=CC(C(C(=C1)C(=O)O)O)O", "BrC1=CC=C(Cl)C=C1", "C%10CC%11CCCC%10%11",
    "[2H]C([2H])([2H])N", "O=C1N=C(N)C=CN1[C@@H]1O[C@H](CO)[C@@H](O)[C@H]1O", "c1ccccc1/C=C/C#N", "[Na+].[Cl-]",
]


def smiles_reference(smiles: str) -> list[bytes]:
    tokens = SMILES_PATTERN.findall(smiles)
    assert "".join(tokens) == smiles
    return [t.encode() for t in tokens]


def test_smiles_words_are_the_schwaller_regex_tokens() -> None:
    for s in REFERENCE_SMILES:
        assert split_words(s.encode(), "smiles", 64) == smiles_reference(s)


def test_smiles_words_on_chebi20(shared_data_dir: str) -> None:
    path = Path(shared_data_dir) / "chebi20" / "train_molecules.tsv"
    if not path.is_file():
        pytest.skip("ChEBI-20 is not in the shared data folder")
    with path.open() as fh:
        rows = [r["smiles"] for _, r in zip(range(3000), csv.DictReader(fh, delimiter="\t"))]
    for s in rows:
        assert split_words(s.encode(), "smiles", 64) == smiles_reference(s), s


def test_text_rules() -> None:
    assert split_words(b"Hello,  world!\n(x)", "whitespace", 16) == [b"Hello,", b"  world!", b"\n(x)"]
    assert split_words(b"Hello,  world!\n(x)", "punctuation", 16) == [b"Hello", b",", b"  world", b"!", b"\n(", b"x", b")"]
    assert split_words(b"immunohistochemistry", "whitespace", 8) == [b"immunohi", b"stochemi", b"stry"]
    assert split_words("naïve café".encode(), "punctuation", 16) == ["naïve".encode(), " café".encode()]
