"""Faithfulness of token-corr-vit to the properties the paper states (no pip reference exists).

Reference: the mechanism as summarised in shared/papers/tokenizers-encoders.md §15 (paper summaries;
exact thresholds are not published there). Checked exactly:
- a constant image (all patches identical) has redundancy 1 and gets the minimum budget;
- IQR outliers of the deep CLS attention are always kept, even beyond the budget;
- the budget is monotone in information density (fewer redundant patches -> more kept);
- merging preserves sum(x) once each group mean is weighted by its size (tolerance 1e-5).
"""

from __future__ import annotations

import numpy as np
import torch
from repmix.sdk import LocatedConfig, Runtime, build_component
from repmix_token_corr_compression.encoder import TokenCorrViT, iqr_outliers, merge_into_kept, redundancy, select_tokens


def _tokenizer():  # type: ignore[no-untyped-def]
    block = {"type": "image-patches", "image_size": 8, "patch_size": 2}
    return build_component(LocatedConfig({"t": block}), "tokenizer", block, ("t",))


def test_a_constant_image_gets_the_minimum_budget() -> None:
    tok = _tokenizer()
    torch.manual_seed(0)
    enc = TokenCorrViT(TokenCorrViT.Config(hidden_size=16, heads=2, layers=3, select_after=1, min_keep=2), Runtime(tokenizer=tok)).eval()
    with torch.no_grad():
        out = enc(tok([np.full((8, 8), 0.3, np.float32), np.random.default_rng(0).random((8, 8)).astype(np.float32)]))
    # 16 identical patches -> identical keys (positions differ, so use the selector on keys directly too)
    keys = torch.ones(16, 8)
    idx, info = select_tokens(keys, torch.rand(16), torch.rand(16), min_keep=3)
    assert info["redundancy"] == 1.0 and info["budget"] == 3
    assert len(idx) >= 3
    assert int(out.extras["kept_count"][1]) >= int(out.extras["kept_count"][0])


def test_iqr_outliers_are_always_kept() -> None:
    g = torch.Generator().manual_seed(0)
    deep = torch.rand(30, generator=g) * 0.1
    deep[[3, 17, 25]] = torch.tensor([5.0, 4.0, 6.0])
    assert iqr_outliers(deep).nonzero().flatten().tolist() == [3, 17, 25]
    keys = torch.ones(30, 4)  # everything redundant: budget = min_keep = 1 < 3 outliers
    for sample in (False, True):
        idx, info = select_tokens(keys, deep, torch.rand(30, generator=g), min_keep=1, sample=sample, generator=g)
        assert {3, 17, 25} <= set(idx.tolist())
    idx, _ = select_tokens(torch.randn(30, 4, generator=g), deep, torch.rand(30, generator=g), keep_ratio=0.5)
    assert {3, 17, 25} <= set(idx.tolist()) and len(idx) == 15


def test_budget_is_monotone_in_density() -> None:
    g = torch.Generator().manual_seed(1)
    distinct = torch.randn(16, 32, generator=g)
    budgets = []
    for copies in (16, 8, 4, 2, 1):  # 16/copies distinct patterns, each repeated
        keys = distinct[: 16 // copies].repeat_interleave(copies, 0)
        _, info = select_tokens(keys, torch.zeros(16), torch.rand(16, generator=g), threshold=0.99)
        budgets.append(info["budget"])
    assert budgets == sorted(budgets) and budgets[0] == 1 and budgets[-1] == 16


def test_merging_preserves_the_weighted_sum() -> None:
    g = torch.Generator().manual_seed(2)
    tokens = torch.randn(12, 6, generator=g)
    _, sim = redundancy(tokens, 0.5, 0)
    kept = torch.tensor([0, 4, 9])
    means, sizes = merge_into_kept(tokens, kept, sim.masked_fill(torch.isinf(sim), -2.0))
    assert int(sizes.sum()) == 12
    torch.testing.assert_close((means * sizes[:, None]).sum(0), tokens.sum(0), atol=1e-5, rtol=0)
    # each dropped token went to its most similar kept token
    for j in set(range(12)) - set(kept.tolist()):
        assert int(sim[j, kept].argmax()) in range(3)


def test_plug_and_play_same_weights_any_selection() -> None:
    tok = _tokenizer()
    torch.manual_seed(0)
    full = TokenCorrViT(TokenCorrViT.Config(hidden_size=16, heads=2, layers=3, select_after=1, selection="none"), Runtime(tokenizer=tok))
    comp = TokenCorrViT(TokenCorrViT.Config(hidden_size=16, heads=2, layers=3, select_after=1, budget="fixed", keep_ratio=0.25), Runtime(tokenizer=tok))
    comp.load_state_dict(full.state_dict())  # parameter-free: the same weights load
    with torch.no_grad():
        out = comp.eval()(tok([np.random.default_rng(3).random((8, 8)).astype(np.float32)]))
    assert int(out["patch"].mask.sum()) == 4 and int(out.extras["kept"].sum()) == 4
