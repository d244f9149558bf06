"""Binary PV invariants stated in the thesis (no reference implementation exists).

* codes are in {0, 1}^b, in training (straight-through forward) and in eval;
* the straight-through gradient equals σ'(z) · ∂L/∂c;
* the Hamming distance equals the ±1 inner-product identity ``(b − <s1, s2>) / 2``, and the aligner's
  ranking equals Hamming ranking; packed popcount search gives the same distances.
"""

from __future__ import annotations

import numpy as np
import torch

from repmix.sdk import Encoded, Granularity, GranularitySpec, Runtime
from repmix_binary_pv.aligners import HammingAligner
from repmix_binary_pv.poolers import BinaryCodePooler
from repmix_binary_pv.search import hamming, pack, search


def _pooler(**cfg: object) -> BinaryCodePooler:
    torch.manual_seed(0)
    return BinaryCodePooler(BinaryCodePooler.Config(**cfg), Runtime(input=GranularitySpec("pooled", 16)))


def test_codes_are_binary_in_train_and_eval() -> None:
    x = torch.randn(32, 16)
    for noise in (0.0, 1.0):
        pooler = _pooler(bits=64, noise_std=noise)
        for mode in (True, False):
            pooler.train(mode)
            c = pooler(Encoded({"token": Granularity(x)})).hidden
            assert c.shape == (32, 64) and set(c.unique().tolist()) <= {0.0, 1.0}
    pooler.eval()
    z = pooler.logits(Encoded({"token": Granularity(x)}))
    torch.testing.assert_close(pooler(Encoded({"token": Granularity(x)})).hidden, (torch.sigmoid(z) > 0.5).float())


def test_straight_through_gradient_is_sigmoid_prime_times_upstream() -> None:
    pooler = _pooler(bits=None).train()
    x = torch.randn(5, 16, requires_grad=True)
    c = pooler(Encoded({"token": Granularity(x)})).hidden
    upstream = torch.randn_like(c)
    (c * upstream).sum().backward()
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(x.grad, s * (1 - s) * upstream)


def test_hamming_equals_the_inner_product_identity() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (7, 64), generator=g).float()
    b = torch.randint(0, 2, (9, 64), generator=g).float()
    ham = (a[:, None, :] != b[None, :, :]).sum(-1).float()  # by definition
    neg = HammingAligner(HammingAligner.Config(), Runtime())(Granularity(a), Granularity(b)).scores
    torch.testing.assert_close(neg, -ham)
    agree = HammingAligner(HammingAligner.Config(score="agreement"), Runtime())(Granularity(a), Granularity(b)).scores
    torch.testing.assert_close(agree, 1 - 2 * ham / 64)
    s1, s2 = 2 * a - 1, 2 * b - 1
    torch.testing.assert_close(ham, (64 - s1 @ s2.T) / 2)
    # packed XOR + popcount: the same distances, and the same ranking as the aligner
    pa, pb = pack(a.numpy().astype(np.uint8)), pack(b.numpy().astype(np.uint8))
    np.testing.assert_array_equal(hamming(pa, pb), ham.numpy().astype(np.int32))
    top, seconds = search(pa, pb, k=9)
    np.testing.assert_array_equal(top, np.argsort(ham.numpy(), axis=1, kind="stable"))
    assert seconds >= 0


def test_sequence_input_is_mean_pooled_first() -> None:
    pooler = _pooler(bits=12).eval()
    h = torch.randn(2, 5, 16)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    c = pooler(Encoded({"token": Granularity(h, mask)})).hidden
    pooled = torch.stack([h[0, :3].mean(0), h[1].mean(0)])
    torch.testing.assert_close(c, pooler(Encoded({"token": Granularity(pooled)})).hidden)


def test_word_popcount_and_top_k_match_the_definition_with_ties(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from repmix_binary_pv import search as search_module

    rng = np.random.default_rng(0)
    for bits in (5, 12, 64, 100, 128):
        a = rng.integers(0, 2, (11, bits)).astype(np.uint8)
        b = rng.integers(0, 2, (300, bits)).astype(np.uint8)
        ham = (a[:, None, :] != b[None, :, :]).sum(-1)  # by definition; many ties among 300 documents
        pa, pb = pack(a), pack(b)
        np.testing.assert_array_equal(hamming(pa, pb), ham)
        for k in (1, 10, 299, 300, 400):
            top, _ = search(pa, pb, k=k, chunk=4)
            np.testing.assert_array_equal(top, np.argsort(ham, axis=1, kind="stable")[:, :k])
    # the byte-table fallback (NumPy without bitwise_count) counts the same bits
    x = search_module.as_words(pack(rng.integers(0, 2, (6, 128)).astype(np.uint8)))
    expected = np.array([[bin(int(w)).count("1") for w in row] for row in x])
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    np.testing.assert_array_equal(search_module._popcount(x), expected)
