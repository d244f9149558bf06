"""Faithfulness of the decoder side (dynamic-tokenization.dynamic-lm), each against an independent reference.

* ``max_merges: 0`` is the plain GPT-2 decoder on base BPE tokens: same ids as std.lm-tokenizer, and
  the same logits, std.causal-lm loss and next-token log-probs as std.hf-lm with the same weights (1e-5);
* a merged token's input embedding is the mean of its parts' embeddings (what the decoder is fed,
  captured at its input; 1e-6), and an untrained hypernetwork gives exactly that mean;
* the output distribution is a softmax over V + U (sums to 1), and the per-position NLL of a merged
  target equals -log softmax(h · [W; mean(W[parts])]ᵀ) computed by hand; the loss is their mean (1e-5);
* bits per byte of a model with uniform logits over V + U (all-zero embeddings), scored by std's
  ``bits-per-byte`` evaluator unchanged, equals log2(V + |U|) x tokens / bytes (1e-6 relative);
* ``next_logprobs`` on the tokenizer's registry ids gives the same NLL as the training forward on the
  same ids (1e-5), -inf outside V + U; the KV-free cache gives the same log-probs as one call.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from dyntok_lm_helpers import build, dynamic_tower, std_tower
from repmix.sdk import Examples, LocatedConfig, build_component

pytest.importorskip("repmix_std", reason="the decoder tests use std's lm-tokenizer, hf-lm, causal-lm and evaluators")

TEXTS = [
    "Vitamin D deficiency is associated with increased risk of fractures.",
    "The ribonucleoprotein particles regulate mRNA stability.",
    "Proliferation of tumour cells was reduced by the inhibitor in vitro.",
]


def test_no_merge_is_the_plain_bpe_decoder(tiny_bpe: str) -> None:
    ours, ref = build(dynamic_tower(tiny_bpe, max_merges=0)), build(std_tower(tiny_bpe))
    tok, enc = ours.tower("text").tokenizer, ours.tower("text").encoder
    ref_tok, ref_enc = ref.tower("text").tokenizer, ref.tower("text").encoder
    enc.lm.load_state_dict(ref_enc.lm.state_dict())
    batch, ref_batch = tok(TEXTS), ref_tok(TEXTS)
    assert torch.equal(batch.input_ids, ref_batch["input_ids"]) and not batch.new_tokens
    assert torch.equal(batch.attention_mask.bool(), ref_batch["attention_mask"].bool())
    with torch.no_grad():
        out, ref_out = enc(batch), ref_enc(ref_batch)
        mask = ref_batch["attention_mask"].bool()
        torch.testing.assert_close(out["logits"].hidden[mask], ref_out["logits"].hidden[mask], atol=1e-5, rtol=1e-5)
        loss, ref_loss = ours({"text": TEXTS}).loss, ref({"text": TEXTS}).loss
    assert abs(float(loss) - float(ref_loss)) < 1e-5
    # the scoring interface: same plain ids, same log-probs
    ids = [tok.encode_plain(t) for t in TEXTS]
    assert ids == [ref_tok.encode_plain(t) for t in TEXTS]
    window = torch.tensor([[tok.bos_token_id, *ids[0]]])
    lp, _ = enc.next_logprobs(window)
    ref_lp, _ = ref_enc.next_logprobs(window)
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=1e-5)


def _inputs_embeds(enc, batch):  # type: ignore[no-untyped-def]
    """The embeddings the transformer body is fed, captured at its input."""
    seen = {}

    def hook(_module, _args, kwargs):  # type: ignore[no-untyped-def]
        seen["emb"] = kwargs["inputs_embeds"].detach().clone()

    handle = enc.lm.base_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            enc(batch)
    finally:
        handle.remove()
    return seen["emb"]


def test_merged_input_embedding_is_the_mean_of_its_parts(tiny_bpe: str) -> None:
    model = build(dynamic_tower(tiny_bpe))
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    batch = tok(TEXTS)
    v = tok.base_vocab_size
    assert batch.new_tokens, "word-level merging must create merged tokens on these texts"
    emb = _inputs_embeds(enc, batch)
    table = enc.lm.get_input_embeddings().weight.detach()
    checked = 0
    for b in range(len(TEXTS)):
        for t in range(int(batch.attention_mask[b].sum())):
            i = int(batch.input_ids[b, t])
            want = table[i] if i < v else table[list(batch.new_parts[i - v])].mean(0)
            torch.testing.assert_close(emb[b, t], want, atol=1e-6, rtol=1e-6)
            checked += i >= v
    assert checked >= 5
    # an untrained hypernetwork (zero-initialised output) gives exactly the mean
    hyper = build(dynamic_tower(tiny_bpe, embeddings="hypernetwork"))
    henc = hyper.tower("text").encoder
    henc.lm.load_state_dict(enc.lm.state_dict())
    torch.testing.assert_close(_inputs_embeds(henc, batch), emb, atol=1e-6, rtol=1e-6)


def test_softmax_over_base_plus_batch_vocabulary(tiny_bpe: str) -> None:
    model = build(dynamic_tower(tiny_bpe))
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    batch = tok(TEXTS)
    v, u = tok.base_vocab_size, len(batch.new_tokens)
    with torch.no_grad():
        out = enc(batch)
        logits, h = out["logits"].hidden, out["token"].hidden
        loss = model({"text": TEXTS}).loss
    assert logits.shape[-1] == v + u
    probs = logits.double().softmax(-1)
    torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs.sum(-1)))
    # by hand: the output table is [W; mean of the parts' rows of W] (tied), softmax over all V + U
    w = enc.lm.get_output_embeddings().weight.detach().double()
    w_ext = torch.cat([w, torch.stack([w[list(p)].mean(0) for p in batch.new_parts])])
    nll, merged_targets = [], 0
    for b in range(len(TEXTS)):
        n = int(batch.attention_mask[b].sum())
        for t in range(n - 1):
            target = int(batch.input_ids[b, t + 1])
            by_hand = -torch.log_softmax(h[b, t].double() @ w_ext.T, -1)[target]
            got = -torch.log_softmax(logits[b, t].double(), -1)[target]
            assert abs(float(by_hand - got)) < 1e-5
            nll.append(float(by_hand))
            merged_targets += target >= v
    assert merged_targets >= 5
    assert abs(float(loss) - sum(nll) / len(nll)) < 1e-5  # std.causal-lm: the mean NLL of the dynamic sequence


def test_uniform_model_bits_per_byte(tiny_bpe: str) -> None:
    model = build(dynamic_tower(tiny_bpe))
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    with torch.no_grad():
        enc.lm.get_input_embeddings().weight.zero_()  # tied: every logit is 0, uniform over V + U
    docs = [*TEXTS, "Stability of the mRNA depends on regulatory proteins and microRNAs. " * 3]
    cfg = LocatedConfig({})
    bpb = build_component(cfg, "evaluator", {"type": "std.bits-per-byte", "batch_size": 64}, ("e",))
    got = bpb.evaluate(model, Examples({"text": docs}))
    # by hand: every window in one batch, U = the merged tokens of all windows
    ids = [tok.encode_plain(d) for d in docs]
    tokens = sum(len(i) for i in ids)  # windows of 63 tokens after [BOS]: every token scored once
    u = len({t for i in ids for t in i if t >= tok.base_vocab_size})
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    want = math.log2(tok.base_vocab_size + u) * tokens / n_bytes
    assert u > 0 and got["tokens"] == tokens and got["bytes"] == n_bytes
    assert got["bits_per_byte"] == pytest.approx(want, rel=1e-6)
    vocab = build_component(cfg, "evaluator", {"type": "dynamic-tokenization.batch-vocabulary", "batch_size": 64}, ("v",))
    counts = vocab.evaluate(model, Examples({"text": docs}))
    assert counts["uniform_bits_per_byte"] == pytest.approx(want, rel=1e-9)
    assert counts["tokens_per_byte"] == pytest.approx(tokens / n_bytes)
    assert counts["merged_tokens_per_batch"] == u
    base = sum(len(tok.plain_backend.encode(d, add_special_tokens=False).ids) for d in docs)
    assert counts["base_tokens_per_byte"] == pytest.approx(base / n_bytes) and base > tokens
    parts = sum(len(tok.parts_of(t)) + 1 for t in {t for i in ids for t in i if t >= tok.base_vocab_size})
    assert counts["vocabulary_bits_per_byte"] == pytest.approx(parts * math.log2(tok.base_vocab_size + 1) / n_bytes)


def test_next_logprobs_equal_the_training_forward(tiny_bpe: str) -> None:
    model = build(dynamic_tower(tiny_bpe))
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    v = tok.base_vocab_size
    rows = [[tok.bos_token_id, *tok.encode_plain(t)] for t in TEXTS[:2]]
    width = max(len(r) for r in rows)
    ids = torch.zeros((2, width), dtype=torch.long)
    mask = torch.zeros((2, width), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, : len(r)], mask[k, : len(r)] = torch.tensor(r), 1
    lp, _ = enc.next_logprobs(ids, None, attention_mask=mask)
    registry = sorted({t for r in rows for t in r if t >= v})
    assert lp.shape[-1] == max(registry) + 1
    finite = torch.isfinite(lp[0, 0])
    assert int(finite.sum()) == v + len(registry)  # exactly V + U are possible, the rest -inf
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-5, rtol=1e-5)
    scored = lp[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)[mask[:, 1:].bool()]
    # the training path on the same ids: a dynamic-bpe batch of id lists (batch-local ids), logits over V + U
    batch = tok(rows)
    with torch.no_grad():
        logits = enc(batch)["logits"].hidden
    ref = -F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch.input_ids[:, 1:].reshape(-1),
                           reduction="none").reshape(2, -1)[batch.attention_mask[:, 1:].bool()]
    torch.testing.assert_close(scored, ref, atol=1e-5, rtol=1e-5)
    # the cache (the prefix) gives the same log-probs for the continuation as one call
    full, _ = enc.next_logprobs(ids[:1])
    first, cache = enc.next_logprobs(ids[:1, :5])
    rest, _ = enc.next_logprobs(ids[:1, 5:], cache)
    torch.testing.assert_close(rest, full[:, 5:], atol=1e-5, rtol=1e-5)
    assert first.shape[1] == 5


def test_generation_decodes_merged_tokens(tiny_bpe: str) -> None:
    from repmix.sdk import load_component_class

    model = build(dynamic_tower(tiny_bpe))
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    prompt = [tok.bos_token_id, *tok.encode_plain("Vitamin deficiency increased")]
    greedy = load_component_class("decoding", "std.greedy")
    out = greedy(greedy.Config(), None).generate(enc, prompt, max_new_tokens=6)  # type: ignore[arg-type]
    assert len(out) <= 6
    allowed = set(range(tok.base_vocab_size)) | {t for t in prompt if t >= tok.base_vocab_size}
    assert set(out) <= allowed  # only base tokens and the merged tokens of the prompt
    assert isinstance(tok.decode(prompt[1:] + out), str)
    assert tok.decode(prompt[1:]) == "Vitamin deficiency increased"
