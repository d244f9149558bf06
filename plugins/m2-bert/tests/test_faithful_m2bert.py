"""Faithfulness of M2-BERT's building blocks.

* The FFT long convolution equals a direct convolution with the materialised kernel
  (``conv1d`` over lags −(T−1)..T−1) and an explicit double loop of the formula
  y_i = Σ_{j≤i} k_fwd[i−j] v_j + Σ_{j>i} k_rev[j−i−1] v_j; tolerance 1e-10 (float64), 1e-5 (float32).
* Non-causal dependence: with the bidirectional filter, the output at position i changes when
  any input j > i changes (by > 1e-6); with the causal one it does not (< 1e-12, FFT rounding;
  mixer and whole encoder, float64).
* The implicit filter at lag m does not depend on the sequence length.
* The block-diagonal (Monarch) linear map equals a dense map with the block-diagonal matrix.
* Padding does not change real positions (also checked by the conformance kit).
"""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import Runtime
from repmix_m2_bert.encoder import M2BertEncoder
from repmix_m2_bert.mixer import (
    BlockdiagLinear,
    HyenaFilter,
    MonarchMixerSequenceMixing,
    direct_long_conv,
    fft_long_conv,
)


def loop_conv(v, k_fwd, k_rev):  # type: ignore[no-untyped-def]
    b, d, t = v.shape
    y = torch.zeros_like(v)
    for i in range(t):
        for j in range(t):
            if j <= i:
                y[:, :, i] += k_fwd[:, i - j] * v[:, :, j]
            elif k_rev is not None:
                y[:, :, i] += k_rev[:, j - i - 1] * v[:, :, j]
    return y


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("t", [1, 2, 7, 16])
def test_fft_conv_equals_direct_conv(bidirectional: bool, t: int) -> None:
    g = torch.Generator().manual_seed(t)
    v = torch.randn(2, 3, t, generator=g, dtype=torch.float64)
    k_fwd = torch.randn(3, t, generator=g, dtype=torch.float64)
    k_rev = torch.randn(3, t, generator=g, dtype=torch.float64) if bidirectional else None
    fft = fft_long_conv(v, k_fwd, k_rev)
    torch.testing.assert_close(fft, direct_long_conv(v, k_fwd, k_rev), atol=1e-10, rtol=0)
    torch.testing.assert_close(fft, loop_conv(v, k_fwd, k_rev), atol=1e-10, rtol=0)


def test_fft_conv_with_the_implicit_filter_float32() -> None:
    torch.manual_seed(0)
    f = HyenaFilter(8, 8, 256, bidirectional=True)
    v = torch.randn(2, 8, 200)
    with torch.no_grad():
        k_fwd, k_rev = f.kernel(200), f.kernel(200, reverse=True)
        torch.testing.assert_close(fft_long_conv(v, k_fwd, k_rev), direct_long_conv(v, k_fwd, k_rev), atol=1e-5, rtol=1e-5)


def test_filter_at_a_lag_does_not_depend_on_length() -> None:
    torch.manual_seed(1)
    f = HyenaFilter(4, 8, 64)
    with torch.no_grad():
        torch.testing.assert_close(f.kernel(10), f.kernel(40)[:, :10])
        torch.testing.assert_close(f.kernel(10, reverse=True), f.kernel(40, reverse=True)[:, :10])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_non_causal_dependence_of_the_mixer(bidirectional: bool) -> None:
    torch.manual_seed(2)
    m = MonarchMixerSequenceMixing(8, 32, order=8, bidirectional=bidirectional).double()
    u = torch.randn(1, 12, 8, dtype=torch.float64)
    mask = torch.ones(1, 12, dtype=torch.bool)
    with torch.no_grad():
        base = m(u, mask)
        for j in (5, 11):
            changed = u.clone()
            changed[0, j] += 1.0
            out = m(changed, mask)
            before = (out[0, :j] - base[0, :j]).abs().max()
            if bidirectional:
                assert before > 1e-6  # positions i < j see x_j
            else:
                assert before < 1e-12  # causal: nothing before j moves (FFT rounding only)
            assert (out[0, j] - base[0, j]).abs().max() > 1e-6


def test_non_causal_dependence_of_the_encoder() -> None:
    class Tok:
        vocab_size = 30
        pad_token_id = 0

    ids = torch.randint(1, 30, (1, 10), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, 9] = (ids[0, 9] % 29) + 1
    for bidirectional in (True, False):
        torch.manual_seed(0)
        cfg = M2BertEncoder.Config(dim=8, layers=2, filter_order=4, max_length=16, dropout=0.0, bidirectional=bidirectional)
        enc = M2BertEncoder(cfg, Runtime(tokenizer=Tok())).double().eval()
        with torch.no_grad():
            a = enc({"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool)})["token"].hidden
            b = enc({"input_ids": changed, "attention_mask": torch.ones_like(ids, dtype=torch.bool)})["token"].hidden
        moved = (a[0, :9] - b[0, :9]).abs().max()
        assert (moved > 1e-6) if bidirectional else (moved < 1e-12)


def test_blockdiag_linear_equals_dense_block_diagonal() -> None:
    torch.manual_seed(3)
    lin = BlockdiagLinear(12, 8, nblocks=4).double()
    x = torch.randn(3, 5, 12, dtype=torch.float64)
    expected = x @ lin.dense().T + lin.bias
    torch.testing.assert_close(lin(x), expected, atol=1e-12, rtol=0)
    assert lin.dense().shape == (8, 12) and lin.dense()[:2, 3:].abs().sum() == 0


def test_padding_never_reaches_real_positions() -> None:
    torch.manual_seed(4)
    m = MonarchMixerSequenceMixing(8, 32, order=8, residual_long_conv=True).double()
    u = torch.randn(1, 6, 8, dtype=torch.float64)
    padded = torch.cat([u, 1e3 * torch.randn(1, 5, 8, dtype=torch.float64)], dim=1)
    mask = torch.arange(11).unsqueeze(0) < 6
    with torch.no_grad():
        torch.testing.assert_close(m(padded, mask)[:, :6], m(u, torch.ones(1, 6, dtype=torch.bool)), atol=1e-9, rtol=0)


def test_too_long_input_is_a_clear_error() -> None:
    from repmix.sdk import InputError

    class Tok:
        vocab_size = 10

    enc = M2BertEncoder(M2BertEncoder.Config(dim=8, max_length=4), Runtime(tokenizer=Tok()))
    with pytest.raises(InputError, match="positions"):
        enc({"input_ids": torch.ones(1, 5, dtype=torch.long), "attention_mask": torch.ones(1, 5, dtype=torch.bool)})
