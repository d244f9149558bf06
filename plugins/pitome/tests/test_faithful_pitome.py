"""Faithfulness of PiToMe merging: the paper's invariants and a naive per-item reference.

* length: every merging step leaves exactly n − r real tokens per item, r = min(floor(N·ratio), N // 2);
* mass: Σ size·x and Σ size are conserved by a step (to 1e-9, float64);
* protected tokens (not among the 2r lowest-isolation ones, and [CLS]) pass through bit-exactly;
* the batched step equals a naive per-item loop written from the algorithm (energy, sort, split,
  argmax matching, size-weighted average) to 1e-12 in float64, with padding in the batch;
* with merge_ratio 0 the encoder equals transformers' BertModel (1e-5), and merging makes it shorter.
"""

from __future__ import annotations

import math

import pytest
import torch
from repmix.sdk import Runtime
from repmix_pitome.encoder import SIZES_KEY, PiToMeBertEncoder
from repmix_pitome.merge import pitome_merge


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random BERT with exactly 4 layers (hidden 32)."""
    from repmix.sdk.testing import write_tiny_bert

    return str(write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-4"), layers=4))


def naive_merge(x, metric, size, ratio, margin, protect_first=True):  # type: ignore[no-untyped-def]
    """One item (no padding), explicit loops. Returns (x', size', protected original indexes)."""
    n = x.shape[0]
    cand = list(range(1, n)) if protect_first else list(range(n))
    big_n = len(cand)
    r = min(math.floor(big_n * ratio), big_n // 2)
    k = [metric[i] / metric[i].norm() for i in range(n)]
    sim = [[float(k[i] @ k[j]) for j in range(n)] for i in range(n)]
    sigma = 1 - margin
    energy = {
        i: sum(math.exp(-0.5 * ((1 - sim[i][j]) / sigma) ** 2) for j in cand) / big_n / (sigma * math.sqrt(2 * math.pi))
        for i in cand
    }
    order = sorted(cand, key=lambda i: (-energy[i], i))
    a_set, b_list = order[:r], order[r : 2 * r]
    groups = {i: [i] for i in range(n) if i not in a_set}
    for a in a_set:
        best = max(b_list, key=lambda b: (sim[a][b], -b_list.index(b)))
        groups[best].append(a)
    rows, sizes = [], []
    for i in sorted(groups):
        members = groups[i]
        if len(members) == 1:
            rows.append(x[i])
            sizes.append(size[i])
        else:
            s = sum(size[j] for j in members)
            rows.append(sum(size[j] * x[j] for j in members) / s)
            sizes.append(s)
    protected = [i for i in range(n) if i not in order[: 2 * r]]
    return torch.stack(rows), torch.stack(sizes), protected, r


def batch(seed: int, lengths: list[int], t: int = 12, d: int = 6, dm: int = 4):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), t, d, generator=g, dtype=torch.float64)
    metric = torch.randn(len(lengths), t, dm, generator=g, dtype=torch.float64)
    size = torch.randint(1, 4, (len(lengths), t), generator=g).to(torch.float64)
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return x, metric, size * mask, mask


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.4, 0.5])
@pytest.mark.parametrize("margin", [0.9, 0.65, 0.3])
def test_batched_merge_equals_naive_reference(ratio: float, margin: float) -> None:
    lengths = [12, 7, 2, 10]
    x, metric, size, mask = batch(int(ratio * 100 + margin * 10), lengths)
    out, new_mask, new_size = pitome_merge(x, metric, mask, size, ratio=ratio, margin=margin)
    for b, n in enumerate(lengths):
        ref_x, ref_s, _, r = naive_merge(x[b, :n], metric[b, :n], size[b, :n], ratio, margin)
        assert int(new_mask[b].sum()) == n - r  # length T − r
        torch.testing.assert_close(out[b, : n - r], ref_x, atol=1e-12, rtol=0)
        torch.testing.assert_close(new_size[b, : n - r], ref_s, atol=0, rtol=0)
        assert not new_mask[b, n - r :].any() and (out[b, n - r :] == 0).all()


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_mass_conserved_and_protected_tokens_exact(ratio: float) -> None:
    lengths = [12, 9, 5]
    x, metric, size, mask = batch(3, lengths)
    out, new_mask, new_size = pitome_merge(x, metric, mask, size, ratio=ratio, margin=0.7)
    before = (x * size.unsqueeze(-1)).sum(dim=1)
    after = (out * new_size.unsqueeze(-1)).sum(dim=1)
    torch.testing.assert_close(after, before, atol=1e-9, rtol=0)
    torch.testing.assert_close(new_size.sum(1), size.sum(1), atol=0, rtol=0)
    for b, n in enumerate(lengths):
        _, _, protected, _ = naive_merge(x[b, :n], metric[b, :n], size[b, :n], ratio, 0.7)
        kept_rows = {tuple(row.tolist()) for row in out[b, new_mask[b]]}
        for i in protected:
            assert tuple(x[b, i].tolist()) in kept_rows  # bit-exact copy
        assert torch.equal(out[b, 0], x[b, 0])  # [CLS] stays first and untouched


def test_per_layer_lengths_and_ratio_zero_is_identity() -> None:
    x, metric, size, mask = batch(5, [12, 6])
    out, m, s = pitome_merge(x, metric, mask, size, ratio=0.0, margin=0.5)
    assert out is x and m is mask
    # repeated steps shrink by r = min(floor(N·ratio), N // 2) each time
    n = 12
    for _ in range(3):
        x, mask, size = pitome_merge(x, metric[:, : x.shape[1]], mask, size, ratio=0.25, margin=0.5)
        r = min(math.floor((n - 1) * 0.25), (n - 1) // 2)
        n -= r
        assert int(mask[0].sum()) == n


def test_padding_garbage_is_ignored() -> None:
    x, metric, size, mask = batch(7, [8, 5])
    x2, metric2 = x.clone(), metric.clone()
    x2[~mask] = 1e4
    metric2[~mask] = -3e3
    a = pitome_merge(x, metric, mask, size, ratio=0.5, margin=0.6)
    b = pitome_merge(x2, metric2, mask, size, ratio=0.5, margin=0.6)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_encoder_without_merging_equals_bert_model(tiny4: str) -> None:
    tiny_bert_dir = tiny4
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    texts = ["the man is riding a horse in the park", "a dog", "the red car and the blue train are in the city"]
    b = dict(tok(texts, padding=True, return_tensors="pt"))
    mask = b["attention_mask"].bool()
    ref = BertModel.from_pretrained(tiny_bert_dir, add_pooling_layer=False).eval()
    for config in ({"merge_ratio": 0.0}, {"merge_ratio": 0.5, "merge_layers": []}):
        enc = PiToMeBertEncoder(PiToMeBertEncoder.Config(model=tiny_bert_dir, **config), Runtime()).eval()
        with torch.no_grad():
            expected = ref(**b).last_hidden_state
            got = enc(b)
        torch.testing.assert_close(got["token"].hidden[mask], expected[mask], atol=1e-5, rtol=1e-4)
    merging = PiToMeBertEncoder(
        PiToMeBertEncoder.Config(model=tiny_bert_dir, merge_ratio=0.5, merge_layers=[0, 1, 2, 3]), Runtime()
    ).eval()
    with torch.no_grad():
        out = merging(b)
    lengths = out["token"].mask.sum(1)
    assert (lengths < mask.sum(1)).all()
    torch.testing.assert_close(out.extras[SIZES_KEY].sum(1), mask.sum(1).to(torch.float32))  # sizes add up


def test_signature_rejects_a_layer_the_model_lacks(tiny4: str) -> None:
    tiny_bert_dir = tiny4
    from repmix.sdk import ConfigError

    with pytest.raises(ConfigError, match="has 4 layers"):
        PiToMeBertEncoder.signature(PiToMeBertEncoder.Config(model=tiny_bert_dir, merge_layers=[4]))
    sig = PiToMeBertEncoder.signature(PiToMeBertEncoder.Config(model=tiny_bert_dir, merge_layers=[-1]))
    assert sig.granularities["token"].dim == 32 and sig.num_layers is None
