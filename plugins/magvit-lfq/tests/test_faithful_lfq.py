"""Faithfulness of the LFQ tokenizer to MAGVIT-v2 (as the thesis and the third-party LFQ code state it).

References: the formulas of lucidrains/vector-quantize-pytorch ``LFQ`` (third-party; not installed,
so written out here by hand) and the properties the thesis states. Tolerances: exact for ids,
codes and causality; 1e-5 for the entropy terms.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from repmix.sdk import LocatedConfig, Runtime, build_component
from repmix_magvit_lfq.autoencoder import LFQAutoencoder, LFQLoss
from repmix_magvit_lfq.quantizers import (
    CausalConv3d,
    codes_to_ids,
    entropy_terms,
    ids_to_codes,
    lfq_quantize,
    vq_quantize,
)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_lfq_is_a_bijection_between_sign_patterns_and_ids(k: int) -> None:
    patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=k)))
    ids = codes_to_ids(patterns)
    assert sorted(ids.tolist()) == list(range(2**k))  # onto [0, 2^K), no collision
    assert torch.equal(ids_to_codes(ids, k), patterns)  # decode(encode(q)) = q
    assert torch.equal(codes_to_ids(ids_to_codes(torch.arange(2**k), k)), torch.arange(2**k))
    # the id is sum_k 2^k 1[z_k > 0] of the latent itself
    z = torch.randn(50, k)
    expected = [sum(2**j for j in range(k) if z[i, j] > 0) for i in range(50)]
    assert codes_to_ids(lfq_quantize(z)).tolist() == expected


def test_lfq_straight_through_gradient_is_identity() -> None:
    z = torch.randn(5, 4, requires_grad=True)
    q = lfq_quantize(z)
    assert set(q.detach().unique().tolist()) <= {-1.0, 1.0}
    g = torch.randn(5, 4)
    (q * g).sum().backward()
    assert torch.equal(z.grad, g)


def _entropy_by_hand(z: torch.Tensor, t: float) -> tuple[float, float]:
    k = z.shape[1]
    codes = list(itertools.product([-1.0, 1.0], repeat=k))
    probs = []
    for row in z.tolist():
        logits = [2 * sum(a * b for a, b in zip(row, c)) / t for c in codes]
        m = max(logits)
        e = [math.exp(x - m) for x in logits]
        s = sum(e)
        probs.append([x / s for x in e])
    per = sum(-sum(p * math.log(p) for p in ps if p > 0) for ps in probs) / len(probs)
    avg = [sum(ps[j] for ps in probs) / len(probs) for j in range(len(codes))]
    batch = -sum(p * math.log(p) for p in avg if p > 0)
    return per, batch


@pytest.mark.parametrize("t", [1.0, 0.5])
def test_entropy_penalty_matches_the_formula(t: float) -> None:
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    per, batch = entropy_terms(z, t)
    ref_per, ref_batch = _entropy_by_hand(z, t)
    assert math.isclose(float(per), ref_per, abs_tol=1e-5) and math.isclose(float(batch), ref_batch, abs_tol=1e-5)
    assert float(batch) <= 3 * math.log(2) + 1e-6
    # the loss combines them as entropy_weight * (per_sample - gamma * batch) + commitment
    loss = LFQLoss(LFQLoss.Config(entropy_weight=0.3, diversity_gamma=0.7, commitment_weight=0.0, temperature=t), Runtime())
    from repmix.sdk import Encoded, Granularity, LossInputs, Alignment

    a = Granularity(torch.zeros(2, 4))
    enc = Encoded({"r": a, "p": a}, extras={"latents": z, "quantizer": "lfq"})
    out = loss(LossInputs({"x": Alignment(torch.zeros(2, 2))}, {"img": enc}, between={"x": (("img", "r"), ("img", "p"))}))
    assert math.isclose(float(out.value), 0.3 * (ref_per - 0.7 * ref_batch), abs_tol=1e-5)


def test_uniform_codes_reach_the_maximum_batch_entropy() -> None:
    k = 3
    z = 20.0 * ids_to_codes(torch.arange(2**k), k)  # one sample on every code, confidently
    per, batch = entropy_terms(z)
    assert float(per) < 1e-6 and math.isclose(float(batch), k * math.log(2), rel_tol=1e-5)


def test_vq_picks_the_nearest_code_with_straight_through() -> None:
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]])
    z = torch.tensor([[0.9, 1.2], [-1.5, 0.0], [0.1, -0.1]], requires_grad=True)
    zq, ids, raw = vq_quantize(z, codebook)
    assert ids.tolist() == [1, 2, 0] and torch.equal(raw, codebook[ids])
    zq.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))


def test_frame_zero_tokens_ignore_later_frames() -> None:
    torch.manual_seed(0)
    conv = CausalConv3d(2, 3, (3, 3, 3))
    video = torch.randn(1, 2, 5, 6, 6)
    other = video.clone()
    other[:, :, 1:] = torch.randn(1, 2, 4, 6, 6)
    assert torch.equal(conv(video)[:, :, 0], conv(other)[:, :, 0])
    # and through the whole tokenizer: the ids of frame 0 of a video equal those of its first frame alone
    tok_block = {"type": "image-patches", "image_size": 8, "patch_size": 2}
    tok = build_component(LocatedConfig({"t": tok_block}), "tokenizer", tok_block, ("t",))
    enc = LFQAutoencoder(LFQAutoencoder.Config(bits=6, hidden=8, downsample=1), Runtime(tokenizer=tok)).eval()
    clip = torch.randn(2, 1, 5, 8, 8)
    changed = clip.clone()
    changed[:, :, 1:] = torch.randn(2, 1, 4, 8, 8)
    with torch.no_grad():
        ids_a = enc({"pixel_values": clip}).extras["ids"]
        ids_b = enc({"pixel_values": changed}).extras["ids"]
        ids_img = enc({"pixel_values": clip[:, :, 0]}).extras["ids"]
    assert ids_a.shape == (2, 5, 4, 4)
    assert torch.equal(ids_a[:, 0], ids_b[:, 0]) and torch.equal(ids_a[:, 0], ids_img[:, 0])
    assert not torch.equal(ids_a[:, 1:], ids_b[:, 1:])


def test_ids_are_in_range_and_reconstruction_has_the_input_shape() -> None:
    tok_block = {"type": "image-patches", "image_size": 8, "patch_size": 2}
    tok = build_component(LocatedConfig({"t": tok_block}), "tokenizer", tok_block, ("t",))
    for q in ("lfq", "vq"):
        enc = LFQAutoencoder(LFQAutoencoder.Config(quantizer=q, bits=5, hidden=8), Runtime(tokenizer=tok))
        out = enc(tok([np.random.default_rng(0).random((8, 8)).astype(np.float32)] * 3))
        ids = out.extras["ids"]
        assert int(ids.min()) >= 0 and int(ids.max()) < 2**5
        assert out["reconstruction"].hidden.shape == out["pixels"].hidden.shape == (3, 64)
