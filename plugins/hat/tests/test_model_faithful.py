"""Faithfulness of the HAT model: strict causality at byte and word level, word pooling restricted to
the word's own bytes (against a naive per-word masked attention), the decoder connector's shift."""

from __future__ import annotations

import math

import pytest
import torch
from repmix.sdk import Runtime

from repmix_hat.model import HATEncoder, WordConnector
from repmix_hat.tokenizer import HATTokenizer

TEXT = "Hello, world! The quick brown fox jumps over the lazy dogCamelCase. Naïve 😀 tail words here"


def _model(**over: object) -> tuple[HATTokenizer, HATEncoder]:
    tok = HATTokenizer(HATTokenizer.Config(max_length=256, max_word_size=8), Runtime())
    cfg = {"hidden_size": 32, "heads": 2, "backbone_layers": 2, "byte_hidden_size": 16, "byte_heads": 2,
           "decoder_layers": 2, **over}
    torch.manual_seed(0)
    return tok, HATEncoder(HATEncoder.Config(**cfg), Runtime(tokenizer=tok)).eval()


def _ids(text: str) -> torch.Tensor:
    return torch.tensor([[258, *text.encode()]])


@pytest.mark.parametrize("window", [None, 5])
def test_byte_level_causality(window: int | None) -> None:
    """The next-byte distribution at byte t is unchanged when any later byte changes."""
    _, enc = _model(window=window)
    ids = _ids(TEXT)
    base, _ = enc.next_logprobs(ids)
    gen = torch.Generator().manual_seed(0)
    n = ids.shape[1]
    for t in range(0, n - 1, 9):
        other = ids.clone()
        other[0, t + 1 :] = torch.randint(0, 256, (n - t - 1,), generator=gen)
        changed, _ = enc.next_logprobs(other)
        torch.testing.assert_close(changed[0, : t + 1], base[0, : t + 1], rtol=0, atol=1e-5)


def test_word_level_causality() -> None:
    """Replacing later whole words (other words, other word counts) leaves every earlier prediction unchanged,
    while the predictions inside later words do change (the backbone is used)."""
    _, enc = _model()
    prefix = "Hello, world! The quick"
    a, b = prefix + " brown fox jumps.", prefix + " lazy, sleepy old dogs never jump!"
    la, _ = enc.next_logprobs(_ids(a))
    lb, _ = enc.next_logprobs(_ids(b))
    k = 1 + len(prefix.encode())  # [BOS] + the shared prefix
    torch.testing.assert_close(la[0, :k], lb[0, :k], rtol=0, atol=1e-5)
    # backbone states of the shared words are identical too
    tok = HATTokenizer(HATTokenizer.Config(max_length=256, max_word_size=8), Runtime())
    wa = enc(tok([a]))["word"].hidden[0]
    wb = enc(tok([b]))["word"].hidden[0]
    shared = len(tok.split(prefix)) + 1 - 1  # [BOS] word + prefix words, minus the still-open last word
    torch.testing.assert_close(wa[:shared], wb[:shared], rtol=0, atol=1e-5)


def test_prediction_uses_the_previous_words() -> None:
    """Changing an earlier word changes the predictions of later words (information flows through the backbone)."""
    _, enc = _model()
    la, _ = enc.next_logprobs(_ids("alpha beta gamma delta"))
    lb, _ = enc.next_logprobs(_ids("omega beta gamma delta"))
    assert (la[0, -5:] - lb[0, -5:]).abs().max() > 1e-4


def test_connector_equals_masked_attention_per_word() -> None:
    """The O(T) segment softmax equals a plain per-word masked multi-head attention of the latent query."""
    torch.manual_seed(1)
    conn = WordConnector(byte_dim=12, word_dim=8, heads=2)
    states = torch.randn(2, 9, 12)
    words = torch.tensor([[0, 0, 1, 1, 1, 2, 3, 3, -1], [0, 1, 1, 1, 1, 1, 1, 2, 2]])
    fast = conn(states, words, 4)
    k, v = conn.kv(conn.kv_norm(states)).view(2, 9, 2, 2, 4).unbind(2)
    q = conn.q(conn.latent).view(2, 4)
    for b in range(2):
        for w in range(int(words[b].max()) + 1):
            sel = words[b] == w
            heads = []
            for h in range(2):
                att = torch.softmax((k[b, sel, h] @ q[h]) / math.sqrt(4), dim=0)
                heads.append(att @ v[b, sel, h])
            torch.testing.assert_close(fast[b, w], conn.o(torch.cat(heads)), rtol=1e-5, atol=1e-6)


def test_word_embedding_depends_only_on_its_bytes() -> None:
    """Connector invariant: changing the encoder states of other words leaves a word's embedding unchanged."""
    torch.manual_seed(2)
    conn = WordConnector(byte_dim=12, word_dim=8, heads=2)
    states = torch.randn(1, 8, 12)
    words = torch.tensor([[0, 0, 1, 1, 1, 2, 2, 2]])
    other = states.clone()
    other[0, [0, 1, 5, 6, 7]] = torch.randn(5, 12)
    torch.testing.assert_close(conn(states, words, 3)[0, 1], conn(other, words, 3)[0, 1])


def test_kv_cache_path_equals_one_call() -> None:
    _, enc = _model()
    ids = _ids(TEXT)
    whole, _ = enc.next_logprobs(ids)
    first, cache = enc.next_logprobs(ids[:, :20])
    rest, _ = enc.next_logprobs(ids[:, 20:], cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole, rtol=0, atol=1e-5)


def test_forward_logits_equal_next_logprobs() -> None:
    """Training (forward + std.causal-lm) and scoring (next_logprobs) see the same model."""
    tok, enc = _model()
    batch = tok([TEXT, "short one"])
    logits = enc(batch)["logits"].hidden
    lp, _ = enc.next_logprobs(batch["input_ids"][:1])
    torch.testing.assert_close(torch.log_softmax(logits[:1], -1), lp, rtol=0, atol=1e-5)
