"""Faithfulness of seed-tokenizer to SEED (official code AILab-CVC/SEED, not on PyPI).

Checked exactly: causal Q-Former — changing query j (its learned embedding) leaves the causal
embeddings of queries i < j bit-exact (and changes those from j on); straight-through — dz_q/dz is the
identity; code ids stay in [0, codebook_size). Within 1e-6: the VQ loss equals
||sg[z_q] - z||^2 + beta ||z_q - sg[z]||^2 (VectorQuantizer2, legacy=True), written out by hand, and
its gradients (z gets 2(z - z_q)/n, the codebook gets 2 beta (z_q - z)/n).
"""

from __future__ import annotations

import numpy as np
import torch
from repmix.sdk import Alignment, Encoded, Granularity, LocatedConfig, LossInputs, Runtime, build_component
from repmix_seed_tokenizer.seed import SeedTokenizer, SeedVQLoss, quantize, vq_loss


def _enc(**kw):  # type: ignore[no-untyped-def]
    block = {"type": "image-patches", "image_size": 8, "patch_size": 2}
    tok = build_component(LocatedConfig({"t": block}), "tokenizer", block, ("t",))
    torch.manual_seed(0)
    cfg = SeedTokenizer.Config(hidden_size=16, heads=2, queries=6, code_dim=4, codebook_size=32, **kw)
    return tok, SeedTokenizer(cfg, Runtime(tokenizer=tok)).eval()


def test_query_i_is_independent_of_later_queries() -> None:
    tok, enc = _enc()
    pixels = tok([np.random.default_rng(0).random((8, 8)).astype(np.float32) for _ in range(3)])["pixel_values"]
    base = enc.qformer.queries.detach().clone()
    with torch.no_grad():
        e0 = enc.causal_embeddings(pixels, base)
        for j in range(1, 6):
            changed = base.clone()
            changed[:, j] += torch.randn(16)
            e1 = enc.causal_embeddings(pixels, changed)
            assert torch.equal(e1[:, :j], e0[:, :j])
            assert not torch.equal(e1[:, j], e0[:, j])


def test_straight_through_gradient_is_identity_and_ids_in_range() -> None:
    codebook = torch.randn(32, 4)
    z = torch.randn(10, 4, requires_grad=True)
    zq_st, ids, zq = quantize(z, codebook)
    assert int(ids.min()) >= 0 and int(ids.max()) < 32
    torch.testing.assert_close(zq_st, zq)
    g = torch.randn(10, 4)
    (zq_st * g).sum().backward()
    assert torch.equal(z.grad, g)
    # ids are the nearest codes
    assert torch.equal(ids, torch.cdist(z.detach(), codebook).argmin(1))


def test_vq_loss_formula_and_gradients() -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(6, 4, generator=g, requires_grad=True)
    codebook = torch.randn(8, 4, generator=g, requires_grad=True)
    _, ids, zq = quantize(z, codebook)
    beta = 0.25
    value = vq_loss(z, zq, beta)
    ref = sum(((zq[i, k] - z[i, k]) ** 2).item() for i in range(6) for k in range(4)) / 24 * (1 + beta)
    assert abs(float(value) - ref) < 1e-6
    value.backward()
    torch.testing.assert_close(z.grad, 2 * (z - zq).detach() / 24, atol=1e-6, rtol=0)
    expected = torch.zeros_like(codebook)
    expected.index_add_(0, ids, 2 * beta * (zq - z).detach() / 24)
    torch.testing.assert_close(codebook.grad, expected, atol=1e-6, rtol=0)


def test_the_loss_adds_reconstruction_and_vq() -> None:
    tok, enc = _enc()
    out = enc(tok([np.eye(8, dtype=np.float32), np.ones((8, 8), np.float32)]))
    loss = SeedVQLoss(SeedVQLoss.Config(beta=0.25), Runtime())
    inputs = LossInputs({"r": Alignment(torch.zeros(2, 2))}, {"img": out}, between={"r": (("img", "reconstruction"), ("img", "target"))})
    value = loss(inputs).value
    mse = torch.nn.functional.mse_loss(out["reconstruction"].hidden, out["target"].hidden)
    torch.testing.assert_close(value, mse + vq_loss(out.extras["latents"], out.extras["quantized"], 0.25))
    assert out.extras["ids"].shape == (2, 6) and out["image"].hidden.shape == (2, 16)
