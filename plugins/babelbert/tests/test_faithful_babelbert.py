"""BabelBERT faithfulness.

* ``nt_xent`` / ``babelbert.nt-xent`` equal pytorch-metric-learning 2.9.0's
  ``NTXentLoss(temperature=0.07)`` (cosine) on the same embeddings and labels (atol 1e-5);
* the pooler averages the sub-words of ``[CLS] w [SEP]`` without the special tokens (checked against
  the Hugging Face model's states and the tokenizer's special-tokens mask);
* the synonym pairs come from real WordNet synsets.
"""

from __future__ import annotations

import pytest
import torch

from repmix.sdk import Alignment, Encoded, Granularity, GranularitySpec, LossInputs, Runtime, load_component_class
from repmix_babelbert.data import SynonymPairsConfig, SynonymPairsDataset
from repmix_babelbert.loss import NTXentLoss, nt_xent
from repmix_babelbert.poolers import WordMeanPooler

pml = pytest.importorskip("pytorch_metric_learning", reason="needs pytorch-metric-learning==2.9.0 (the test extra)")


def _reference(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> float:
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.losses import NTXentLoss as Reference

    return float(Reference(temperature=temperature, distance=CosineSimilarity())(emb, labels))


@pytest.mark.parametrize("seed", range(5))
def test_nt_xent_equals_pytorch_metric_learning(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 12
    emb = torch.randn(n, 16, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (n,), generator=g)
    for tau in (0.07, 0.5):
        assert float(nt_xent(emb, labels, tau)) == pytest.approx(_reference(emb, labels, tau), abs=1e-5)


def test_loss_component_equals_the_reference_on_both_sides() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    targets = torch.tensor([5.0, 2.0, 5.0, 7.0, 1.0, 2.0])
    loss = NTXentLoss(NTXentLoss.Config(), Runtime())
    inputs = LossInputs(
        {"s": Alignment(a @ b.T)},
        {"query": Encoded({"w": Granularity(a)}), "document": Encoded({"w": Granularity(b)})},
        targets=targets,
        between={"s": (("query", "w"), ("document", "w"))},
    )
    out = loss(inputs)
    expected = _reference(torch.cat([a, b]), torch.cat([targets, targets]).long())
    assert float(out.value) == pytest.approx(expected, abs=1e-5)
    # without targets every pair is its own class
    plain = NTXentLoss(NTXentLoss.Config(use_targets=False), Runtime())(inputs)
    assert float(plain.value) == pytest.approx(_reference(torch.cat([a, b]), torch.arange(6).repeat(2)), abs=1e-5)
    # no positive pair: zero, still differentiable
    lone = torch.randn(4, 8, requires_grad=True)
    value = nt_xent(lone, torch.arange(4))
    value.backward()
    assert float(value.detach()) == 0.0 and lone.grad is not None


def test_pooler_excludes_special_tokens(tiny_hf_model_dir: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    words = ["horse", "water molecule", "hello"]
    tok = AutoTokenizer.from_pretrained(tiny_hf_model_dir)
    bert = AutoModel.from_pretrained(tiny_hf_model_dir).eval()
    batch = tok(words, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = bert(**batch).last_hidden_state
    pooler = WordMeanPooler(WordMeanPooler.Config(), Runtime(input=GranularitySpec("sequence", 32)))
    ours = pooler(Encoded({"token": Granularity(h, batch["attention_mask"].bool())})).hidden
    for i, w in enumerate(words):
        special = tok(w, return_special_tokens_mask=True)["special_tokens_mask"]
        keep = torch.tensor([s == 0 for s in special])
        torch.testing.assert_close(ours[i], h[i, : len(special)][keep].mean(0))


def test_packaged_pairs_are_real_wordnet_synsets() -> None:
    ds = SynonymPairsDataset(SynonymPairsConfig(), Runtime())
    synsets = ds.synsets()
    assert len(synsets) == 6449
    # WordNet 3.0 noun synset 02084071: dog, domestic dog, Canis familiaris (kept only when sampled);
    # check a pair from the packaged file against its synset instead
    train, dev = ds.load("train"), ds.load("dev")
    assert set(train.targets).isdisjoint(dev.targets)  # dev synsets never seen in training
    by_label = {}
    for a, b, t in zip(train.columns["query"], train.columns["document"], train.targets, strict=True):
        by_label.setdefault(t, set()).update((a, b))
    ids = list(synsets)
    for label, words in list(by_label.items())[:200]:
        assert words <= set(synsets[ids[int(label)]])
    assert len(train) + len(dev) == sum(len(w) if len(w) > 2 else 1 for w in synsets.values())


def test_wordnet_folder_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    folder = Path("/usr/share/wordnet")
    if not (folder / "data.noun").is_file():
        pytest.skip("Debian's wordnet-base (/usr/share/wordnet) is not installed")
    ds = SynonymPairsDataset(SynonymPairsConfig(source="wordnet", path=str(folder), pos=["noun"]), Runtime())
    synsets = ds.synsets()
    assert synsets["02084071-n"] == ["dog", "domestic dog", "Canis familiaris"]
