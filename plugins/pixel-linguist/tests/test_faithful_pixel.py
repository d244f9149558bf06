"""Faithfulness of pixel-linguist to the Pixel Linguist paper (official code gowitheflow-1998/Pixel-Linguist).

- Rendering is deterministic (byte-identical strips) and uses the font file shipped in matplotlib.
- "Perceptual continuity": a one-character substitution changes at most 3 patches (pixel L1 is zero
  on every other patch) — measured on 200 seeded typos of STS-B-like sentences; the same typos change
  several WordPiece ids of all-MiniLM-L6-v2 (shown, not asserted beyond "at least one").
- Symmetric InfoNCE with tau = 0.05 (std ``info-nce``, as the paper's compute_loss): with
  e1 = e2 = orthonormal rows the loss equals log(1 + (B - 1) e^{-1/tau}) (closed form; 1e-6), and
  it equals 0.5 [CE(S, diag) + CE(S^T, diag)] written out for random embeddings (1e-6).
- SMILES render like any text (patches, mask), so molecules can be read by the same encoder.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from repmix.sdk import Alignment, Encoded, Granularity, LocatedConfig, LossInputs, build_component
from repmix_pixel_linguist.render import RenderTextTokenizer, render, typo

SENTENCES = [
    "A man is playing a large flute.",
    "A woman is slicing an onion with a knife.",
    "Three dogs are running through the snow.",
    "The cat sat quietly on the warm windowsill.",
    "Stock markets fell sharply on Tuesday morning.",
]


def _tok(**kw):  # type: ignore[no-untyped-def]
    block = {"type": "render-text", **kw}
    return build_component(LocatedConfig({"t": block}), "tokenizer", block, ("t",))


def test_rendering_is_deterministic_and_inks_the_text() -> None:
    a, ra = render("Pixel Linguist")
    b, rb = render("Pixel Linguist")
    assert a.tobytes() == b.tobytes() and ra == rb
    assert a.shape == (16, 64 * 16) and a.max() == 1.0 and a[:, ra * 16 :].sum() == 0


def test_a_substitution_typo_changes_at_most_three_patches() -> None:
    tok = _tok()
    rng = random.Random(0)
    changed_counts = []
    for _ in range(200):
        s = rng.choice(SENTENCES)
        t = typo(s, rng, 1, ["substitute"])
        p, _ = tok.patches(s)
        q, _ = tok.patches(t)
        changed = int(((p - q).abs().sum(-1) > 0).sum())
        changed_counts.append(changed)
    assert max(changed_counts) <= 3 and min(changed_counts) >= 1


def test_the_same_typos_change_wordpiece_ids(minilm_dir) -> None:  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers")
    wp = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    rng = random.Random(0)
    diffs = []
    for _ in range(50):
        s = rng.choice(SENTENCES)
        a, b = wp(s)["input_ids"], wp(typo(s, rng, 1, ["substitute"]))["input_ids"]
        diffs.append(sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b)))
    assert min(diffs) >= 1


def _info_nce(**kw):  # type: ignore[no-untyped-def]
    block = {"type": "info-nce", **kw}
    return build_component(LocatedConfig({"l": block}), "loss", block, ("l",), reserved={"on": "", "weight": ""})


@pytest.mark.parametrize("b", [2, 4, 8])
def test_symmetric_info_nce_closed_form(b: int) -> None:
    loss = _info_nce(temperature=0.05)
    e = torch.eye(b, 16, dtype=torch.float64)  # the value is ~1e-9: float32 rounds it to 0
    out = loss(LossInputs({"s": Alignment(e @ e.T)}, {}))
    assert math.isclose(float(out.value), math.log(1 + (b - 1) * math.exp(-1 / 0.05)), rel_tol=1e-6, abs_tol=1e-9)


def test_symmetric_info_nce_matches_the_paper_formula() -> None:
    g = torch.Generator().manual_seed(0)
    e1 = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    e2 = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    s = e1 @ e2.T
    out = _info_nce(temperature=0.05)(LossInputs({"s": Alignment(s)}, {}))
    scores = s / 0.05
    target = torch.arange(5)
    ref = 0.5 * (torch.nn.functional.cross_entropy(scores, target) + torch.nn.functional.cross_entropy(scores.T, target))
    assert math.isclose(float(out.value), float(ref), rel_tol=1e-6)


def test_smiles_render_as_well_as_text() -> None:
    tok = _tok(max_patches=32)
    batch = tok(["CC(=O)Oc1ccccc1C(=O)O", "C1=CC=CC=C1", "A plane is taking off."])
    assert batch["patches"].shape[0] == 3 and batch["patches"].shape[2] == 256
    real = batch["mask"].sum(1).tolist()
    assert real[0] > real[1] and all(r >= 2 for r in real)
    assert float(batch["patches"][0, : real[0] - 1].sum()) > 0
    # different molecules render differently
    assert not torch.equal(batch["patches"][0], batch["patches"][1])
