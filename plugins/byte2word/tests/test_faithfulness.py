"""Faithfulness to Byte2Word (Lee, Guo, Qiu 2022, arXiv 2211.12677) and to the CausalLM contract.

The paper's stated properties (docs/plugins/byte2word.md, "Faithfulness"):

* the input side (the byte -> word embedder) takes about 10 % of the parameters of the sub-word
  embedding table it replaces: the grid configs' embedder against the base's BPE-4096 table at
  width 192 (4096 x 192 = 786,432): 78,912 parameters = 10.03 % (text), 78,528 = 9.98 % (SMILES);
  the test accepts 9-11 %;
* a word's vector depends on its own bytes only (independent of its neighbours: exact,
  torch.equal), so character noise in one word moves that word's vector alone;
* the embedder equals an independent re-computation of latent-query cross-attention from its
  weights (1e-5).

And for the byte-level CausalLM the grid scores: the logits predicting byte t read bytes < t
only (1e-5), the cache gives the full forward (1e-5), and the backbone's sequence length is the
number of words.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest
import torch
from b2w_helpers import ids_of, tiny_model
from repmix.sdk import build_model, load_config, plan_model
from repmix_byte2word.embedder import ByteToWordEmbedder

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TEXT = "Vitamin D deficiency (p < 0.05) is associated with bone loss."
BPE_TABLE = 4096 * 192      # examples/lm-scifact.yaml: BPE 4096, n_embd 192 (tied input/output table)
BERT_VOCAB_TABLE = 30522 * 192  # BERT's WordPiece vocabulary at the same width


@pytest.mark.parametrize("config,expected", [("lm-scifact.yaml", 78_912), ("lm-smiles.yaml", 78_528)])
def test_input_parameters_are_about_ten_percent_of_the_subword_table(config: str, expected: int) -> None:
    model = build_model(plan_model(load_config(str(CONFIGS / config))), load_pretrained=False)
    enc = model.tower("text").encoder
    assert enc.input_parameters() == expected
    assert 0.09 <= enc.table_ratio(4096) <= 0.11
    assert enc.table_ratio(4096) == pytest.approx(expected / BPE_TABLE)
    assert enc.table_ratio(30522) == pytest.approx(expected / BERT_VOCAB_TABLE)  # 1.3 %: against BERT's vocabulary
    # what the embedder is made of: byte table, byte positions, latents, cross-attention, MLP, projection
    d_b, k, length, d = 48, 4, enc.max_word_bytes, 192
    by_hand = (261 * d_b + length * d_b + k * d_b + 3 * 2 * d_b + (4 * d_b * d_b + 4 * d_b)
               + (d_b * 4 * d_b + 4 * d_b + 4 * d_b * d_b + d_b) + (k * d_b * d + d))
    assert by_hand == expected


def word_spans(tok, ids: torch.Tensor) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    starts = tok.word_starts(ids)[0].tolist()
    bounds = [i for i, s in enumerate(starts) if s] + [len(starts)]
    return list(itertools.pairwise(bounds))


def test_word_vector_is_independent_of_its_neighbours() -> None:
    tok, enc = tiny_model()
    ids = ids_of(tok, TEXT)
    spans = word_spans(tok, ids)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        base = enc(batch)["word"].hidden[0]
    target = 2
    s, e = spans[target]
    typo = torch.cat([ids[:, : s + 2], ids[:, s + 3 : e], torch.tensor([[ord("q")]]), ids[:, e:]], dim=1)  # drop+insert
    shorter = torch.cat([ids[:, : s + 1], torch.tensor([list(b"ok")]), ids[:, e:]], dim=1)
    for alt in (typo, shorter):
        with torch.no_grad():
            out = enc({"input_ids": alt, "attention_mask": torch.ones_like(alt)})["word"].hidden[0]
        assert out.shape == base.shape
        for i in range(len(spans)):
            if i == target:
                assert not torch.allclose(out[i], base[i])
            else:
                assert torch.equal(out[i], base[i]), i  # noise in word 2 moves word 2 alone


def test_embedder_matches_an_independent_cross_attention() -> None:
    torch.manual_seed(0)
    emb = ByteToWordEmbedder(261, 8, byte_dim=12, latents=3, heads=3, mlp_ratio=2, dim=20).eval()
    words = torch.randint(0, 256, (5, 8))
    mask = torch.arange(8)[None] < torch.tensor([[1], [3], [8], [5], [2]])
    with torch.no_grad():
        got = emb(words, mask)
        # by hand: LN'd latents query LN'd (byte + position) embeddings, per head, padding excluded
        keys = emb.norm_bytes(emb.byte_embedding(words) + emb.byte_positions.weight[None])
        q_in = emb.norm_latents(emb.latents)
        w, b = emb.attention.in_proj_weight, emb.attention.in_proj_bias
        d = 12
        q = q_in @ w[:d].T + b[:d]
        k = keys @ w[d : 2 * d].T + b[d : 2 * d]
        v = keys @ w[2 * d :].T + b[2 * d :]
        heads = []
        for h in range(3):
            sl = slice(4 * h, 4 * h + 4)
            scores = (q[None, :, sl] @ k[:, :, sl].transpose(1, 2)) / math.sqrt(4)
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
            heads.append(scores.softmax(-1) @ v[:, :, sl])
        att = torch.cat(heads, -1) @ emb.attention.out_proj.weight.T + emb.attention.out_proj.bias
        z = emb.latents[None] + att
        z = z + emb.mlp(emb.norm_mlp(z))
        want = z.reshape(5, -1) @ emb.project.weight.T + emb.project.bias
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_backbone_sequence_length_is_the_number_of_words() -> None:
    tok, enc = tiny_model()
    seen: list[tuple[int, ...]] = []
    handle = enc.backbone[0].register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    batch = tok([TEXT])
    with torch.no_grad():
        enc(batch)
    handle.remove()
    n_words = int(tok.word_starts(batch["input_ids"]).sum())
    assert seen == [(1, n_words, 32)] and n_words < batch["input_ids"].shape[1]


@pytest.mark.parametrize("split,text", [
    ("punctuation", TEXT),
    ("smiles", "CC(=O)OC(CC(=O)[O-])C[N+](C)(C)CBr.Cl%12"),
])
def test_prediction_of_byte_t_does_not_see_bytes_from_t_on(split: str, text: str) -> None:
    tok, enc = tiny_model(split=split, max_word_bytes=6)
    ids = ids_of(tok, text)
    full, _ = enc.next_logprobs(ids)
    rng = random.Random(0)
    alphabet = list(b" (.,CcBrl[]%1aZ") + [rng.randrange(256) for _ in range(8)]
    n = ids.shape[1]
    cuts = [t for t in range(1, n) for _ in range(2)]
    alts = ids.repeat(len(cuts), 1)
    for r, t in enumerate(cuts):
        alts[r, t:] = torch.tensor([rng.choice(alphabet) for _ in range(n - t)])
    out, _ = enc.next_logprobs(alts)
    for r, t in enumerate(cuts):
        torch.testing.assert_close(out[r, :t], full[0, :t], atol=1e-5, rtol=0)  # logits at t-1 predict byte t


def test_cache_and_padding_give_the_full_forward() -> None:
    tok, enc = tiny_model()
    ids = ids_of(tok, TEXT)
    full, _ = enc.next_logprobs(ids)
    a, cache = enc.next_logprobs(ids[:, :23])
    b, _ = enc.next_logprobs(ids[:, 23:], cache)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=0)
    short = ids_of(tok, "Hi there")
    both = torch.zeros(2, ids.shape[1], dtype=torch.long)
    both[0], both[1, : short.shape[1]] = ids[0], short[0]
    mask = torch.zeros_like(both)
    mask[0], mask[1, : short.shape[1]] = 1, 1
    batched, _ = enc.next_logprobs(both, attention_mask=mask)
    torch.testing.assert_close(batched[0], full[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched[1, : short.shape[1]], enc.next_logprobs(short)[0][0], atol=1e-5, rtol=0)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        logits = enc(batch)["logits"].hidden
    torch.testing.assert_close(torch.log_softmax(logits, -1), full, atol=1e-5, rtol=0)
