"""Faithfulness of multi-lane to MULTI-LANE's stated properties (official code tdemin16/multi-lane, not on PyPI).

Checked exactly (bit-exact, torch.equal): lane isolation — adding a lane, or changing another lane's
parameters, leaves a lane's output unchanged; the frozen backbone receives no gradient. Within 1e-6:
selector weights sum to 1 over the patches; summaries equal the weights applied to the patches,
written out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from repmix.sdk import LocatedConfig, Runtime, build_component
from repmix_multi_lane.encoder import MultiLaneEncoder, summarize


def _tok():  # type: ignore[no-untyped-def]
    block = {"type": "image-patches", "image_size": 8, "patch_size": 2}
    return build_component(LocatedConfig({"t": block}), "tokenizer", block, ("t",))


def _images(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((8, 8)).astype(np.float32) for _ in range(n)]


def _enc(tasks: int, seed: int = 0) -> MultiLaneEncoder:
    torch.manual_seed(seed)
    cfg = MultiLaneEncoder.Config(hidden_size=16, heads=2, layers=2, tasks=tasks, selectors=3, prompts=2, prompt_layers=2)
    return MultiLaneEncoder(cfg, Runtime(tokenizer=_tok())).eval()


def test_adding_a_lane_leaves_earlier_lanes_bit_exact() -> None:
    tok = _tok()
    two, three = _enc(2), _enc(3, seed=5)
    state = three.state_dict()
    state.update(two.state_dict())  # same backbone and lanes 0-1; lane 2 keeps its own weights
    three.load_state_dict(state)
    batch = tok(_images())
    with torch.no_grad():
        a = two(batch)["lanes"].hidden
        b = three(batch)["lanes"].hidden
        assert torch.equal(a, b[:, :2])
        for p in three.lanes[2].parameters():
            p.add_(torch.randn_like(p))
        c = three(batch)["lanes"].hidden
    assert torch.equal(c[:, :2], a) and not torch.equal(c[:, 2], b[:, 2])


def test_selector_weights_sum_to_one_and_summaries_are_weighted_means() -> None:
    g = torch.Generator().manual_seed(1)
    s, x = torch.randn(4, 8, generator=g), torch.randn(2, 10, 8, generator=g)
    summaries, w = summarize(s, x)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4), atol=1e-6, rtol=0)
    for b in range(2):
        for i in range(4):
            logits = [float(s[i] @ x[b, n]) / math.sqrt(8) for n in range(10)]
            z = sum(math.exp(v) for v in logits)
            ref = sum((math.exp(v) / z) * x[b, n] for n, v in enumerate(logits))
            torch.testing.assert_close(summaries[b, i], ref, atol=1e-6, rtol=0)


def test_the_backbone_is_frozen_and_lanes_learn() -> None:
    enc = _enc(2).train()
    out = enc(_tok()(_images()))
    out["cls"].hidden.sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in enc.vit.parameters())
    assert all(p.grad is not None for p in enc.lanes.parameters())


def test_a_lane_sees_g_plus_one_tokens() -> None:
    enc = _enc(1)
    seen = []
    blk = enc.vit.blocks[0]
    original = blk.attend
    blk.attend = lambda x, *a, **k: (seen.append(x.shape[1]), original(x, *a, **k))[1]  # type: ignore[method-assign]
    with torch.no_grad():
        out = enc(_tok()(_images(2)))
    assert seen[-1] == 3 + 1  # G + 1, not N + 1 = 17
    assert out["summary"].hidden.shape == (2, 3, 16) and out["cls"].hidden.shape == (2, 16)
