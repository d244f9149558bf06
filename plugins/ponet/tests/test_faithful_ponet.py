"""Faithfulness of PoNet's token mixing against a naive reference with explicit loops (same weights).

The reference follows the official ``PoNetSelfAttention`` description position by position:
g = masked mean of Q per head, a = softmax over real t of g·K_t/sqrt(h), g' = Σ a_t K_t;
s_i = max of S over seg(i) (equal chunks of the real length); l_i = max of L over the
real positions in [i - k//2, i + k//2]; o_i = (g' + s_i) ⊙ O_i + l_i, 0 at padding.
Tolerance 1e-6 (float64). Also the paper's invariants: g' is the same at every position,
s is constant within a segment, padding changes nothing, and the whole encoder's
per-layer states equal a loop over the layers.
"""

from __future__ import annotations

import math

import pytest
import torch
from repmix.sdk import Runtime
from repmix_ponet.encoder import PoNetEncoder, PoNetMixing


def naive_mixing(m: PoNetMixing, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PoNet mixing with explicit loops over items, heads, positions and segments."""
    b_size, t_size, d = h.shape
    out = torch.zeros_like(h)
    for b in range(b_size):
        real = [t for t in range(t_size) if mask[b, t]]
        n = len(real)
        q = [m.query(h[b, t]) for t in range(t_size)]
        k = [m.key(h[b, t]) for t in range(t_size)]
        g_prime = torch.zeros(d, dtype=h.dtype)
        hd = m.head_dim
        for head in range(m.heads):
            sl = slice(head * hd, (head + 1) * hd)
            g = sum(q[t][sl] for t in real) / n
            logits = [float(g @ k[t][sl]) / math.sqrt(hd) for t in real]
            top = max(logits)
            weights = [math.exp(x - top) for x in logits]
            z = sum(weights)
            g_prime[sl] = sum((w / z) * k[t][sl] for w, t in zip(weights, real))
        seg = {t: min(m.segments - 1, (t * m.segments) // n) for t in real}
        for i in real:
            s_i = torch.stack([m.segment(h[b, j]) for j in real if seg[j] == seg[i]]).max(dim=0).values
            window = [j for j in range(i - m.kernel // 2, i + m.kernel // 2 + 1) if j in seg]
            l_i = torch.stack([m.local(h[b, j]) for j in window]).max(dim=0).values
            out[b, i] = (g_prime + s_i) * m.output_gate(h[b, i]) + l_i
    return out


def mixer(seed: int, **kw: int) -> PoNetMixing:
    torch.manual_seed(seed)
    return PoNetMixing(kw.get("dim", 8), kw.get("heads", 2), kw.get("segments", 3), kw.get("kernel", 3)).double()


@pytest.mark.parametrize("segments,kernel,heads", [(1, 3, 1), (3, 3, 2), (4, 5, 4), (7, 1, 2)])
def test_mixing_equals_naive_loops(segments: int, kernel: int, heads: int) -> None:
    m = mixer(segments, segments=segments, kernel=kernel, heads=heads)
    g = torch.Generator().manual_seed(kernel)
    h = torch.randn(3, 9, 8, generator=g, dtype=torch.float64)
    mask = torch.arange(9).unsqueeze(0) < torch.tensor([9, 5, 1]).unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(m(h, mask), naive_mixing(m, h, mask), atol=1e-6, rtol=0)


def test_global_vector_shared_and_segment_constant() -> None:
    m = mixer(0, segments=3)
    h = torch.randn(2, 9, 8, dtype=torch.float64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    with torch.no_grad():
        g = m.global_pool(m.query(h), m.key(h), mask)
        assert g.shape == (2, 8)
        s = m.segment_pool(m.segment(h), mask)
    for start in (0, 3, 6):  # 9 tokens, 3 segments of 3
        assert torch.equal(s[:, start], s[:, start + 1]) and torch.equal(s[:, start], s[:, start + 2])
    assert not torch.equal(s[:, 0], s[:, 3])


def test_padding_does_not_change_real_outputs() -> None:
    m = mixer(1, segments=2)
    h = torch.randn(1, 6, 8, dtype=torch.float64)
    padded = torch.cat([h, 1e3 * torch.randn(1, 4, 8, dtype=torch.float64)], dim=1)
    mask = torch.arange(10).unsqueeze(0) < 6
    with torch.no_grad():
        torch.testing.assert_close(m(padded, mask)[:, :6], m(h, torch.ones(1, 6, dtype=torch.bool)), atol=1e-9, rtol=0)


def test_encoder_layers_are_a_loop_over_blocks() -> None:
    class Tok:
        vocab_size = 50
        pad_token_id = 0

    torch.manual_seed(0)
    enc = PoNetEncoder(PoNetEncoder.Config(dim=8, heads=2, layers=3, dropout=0.0), Runtime(tokenizer=Tok())).eval()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = ids != 0
    with torch.no_grad():
        out = enc({"input_ids": ids, "attention_mask": mask}, output_layers=True)
        assert len(out.layers) == 4
        h = out.layers[0]
        for block, state in zip(enc.blocks, out.layers[1:]):
            h = block(h, mask)
            torch.testing.assert_close(state, h)
        torch.testing.assert_close(out["token"].hidden, out.layers[-1])


def test_too_long_input_is_a_clear_error() -> None:
    from repmix.sdk import InputError

    class Tok:
        vocab_size = 10

    enc = PoNetEncoder(PoNetEncoder.Config(dim=8, max_length=4), Runtime(tokenizer=Tok()))
    with pytest.raises(InputError, match="positions"):
        enc({"input_ids": torch.ones(1, 5, dtype=torch.long), "attention_mask": torch.ones(1, 5, dtype=torch.bool)})
