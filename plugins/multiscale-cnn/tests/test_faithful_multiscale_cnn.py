"""Faithfulness of the multi-scale CNN.

* shapes: the pooled output is [B, |K|·F] (encoder and pooler, declared by signature());
* each scale equals a single-scale reference: a fresh ``nn.Conv1d`` with that width's weights,
  applied to the item alone (its real tokens, zero-padded to at least k), then the activation
  and ``max`` over all its windows (1e-12, float64);
* padding is masked: garbage at padded positions changes nothing (exact), nor does more padding (1e-12);
* a left-padded batch is rejected with a clear error.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from repmix.sdk import EncoderSignature, GranularitySpec, InputError, Runtime
from repmix_multiscale_cnn.cnn import MultiScaleCNNEncoder, MultiScaleCNNPooler, MultiScaleConv


def reference_scale(conv: torch.nn.Conv1d, x: torch.Tensor, act) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """One item x [n, D] (no padding), one width: Conv1d + activation + max over every window."""
    single = torch.nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0]).double()
    single.load_state_dict(conv.state_dict())
    h = x.T.unsqueeze(0)
    if h.shape[-1] < conv.kernel_size[0]:
        h = F.pad(h, (0, conv.kernel_size[0] - h.shape[-1]))
    return act(single(h))[0].max(dim=-1).values


@pytest.mark.parametrize("activation", ["relu", "tanh", "identity"])
def test_each_scale_equals_a_single_scale_reference(activation: str) -> None:
    torch.manual_seed(0)
    kernels, filters = [1, 2, 3, 6], 5
    cnn = MultiScaleConv(4, kernels, filters, activation).double()
    lengths = [9, 4, 1, 6]
    x = torch.randn(4, 9, 4, dtype=torch.float64)
    mask = torch.arange(9).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    with torch.no_grad():
        z = cnn(x, mask)
        assert z.shape == (4, len(kernels) * filters)
        act = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda t: t}[activation]
        for b, n in enumerate(lengths):
            for i, conv in enumerate(cnn.convs):
                ref = reference_scale(conv, x[b, :n], act)
                torch.testing.assert_close(z[b, i * filters : (i + 1) * filters], ref, atol=1e-12, rtol=0)


def test_padding_is_masked() -> None:
    torch.manual_seed(1)
    cnn = MultiScaleConv(3, [2, 4], 6).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    noisy = x.clone()
    noisy[~mask] = 1e4
    longer = torch.cat([noisy, -1e4 * torch.ones(2, 3, 3, dtype=torch.float64)], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        assert torch.equal(cnn(x, mask), cnn(noisy, mask))
        torch.testing.assert_close(cnn(x, mask), cnn(longer, longer_mask), atol=1e-12, rtol=0)


def test_left_padding_is_a_clear_error() -> None:
    cnn = MultiScaleConv(3, [2], 2)
    with pytest.raises(InputError, match="right-padded"):
        cnn(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 1]]).bool())


def test_declared_shapes() -> None:
    class Tok:
        vocab_size = 20

    cfg = MultiScaleCNNEncoder.Config(embed_dim=8, kernel_sizes=[2, 3, 4], filters=7)
    sig = MultiScaleCNNEncoder.signature(cfg)
    assert sig.granularities["sentence"] == GranularitySpec("pooled", 21)
    enc = MultiScaleCNNEncoder(cfg, Runtime(tokenizer=Tok())).eval()
    ids = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]])
    out = enc({"input_ids": ids, "attention_mask": ids != 0})
    assert out["sentence"].hidden.shape == (2, 21) and out["token"].hidden.shape == (2, 4, 8)
    pcfg = MultiScaleCNNPooler.Config(kernel_sizes=[1, 5], filters=3)
    spec = MultiScaleCNNPooler.signature(pcfg, EncoderSignature({"token": GranularitySpec("sequence", 8)}))
    assert spec == GranularitySpec("pooled", 6)
