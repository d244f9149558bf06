"""Faithfulness of the std components to independent reference implementations.

1. A model assembled from YAML (hf-tokenizer + hf-transformer + mean, normalize)
   on all-MiniLM-L6-v2 reproduces sentence-transformers' ``encode`` on real
   STS-B sentences (max abs difference <= 1e-5).
2. The poolers equal sentence-transformers' ``Pooling`` module, mode by mode.
3. ``mnrl`` equals sentence-transformers' own ``MultipleNegativesRankingLoss``
   computation on the same embeddings (values and gradients).
4. ``maxsim`` equals a brute-force loop over pairs and tokens (and
   sentence-transformers' ``util.similarity.maxsim``).
5. ``info-nce`` equals its formula written out by hand with explicit loops.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from repmix.sdk import (
    Alignment,
    Encoded,
    Granularity,
    LocatedConfig,
    LossInputs,
    Runtime,
    build_model,
    parse_yaml,
    plan_model,
)
from repmix_std.aligners import CosineAligner, MaxSimAligner
from repmix_std.losses import InfoNCELoss, MultipleNegativesRankingLoss
from repmix_std.poolers import ClsPooler, LastTokenPooler, MaxPooler, MeanPooler
from torch import nn

EMBEDDING_TOLERANCE = 1e-5
NUM_STS_SENTENCES = 256

MINILM_YAML = """
model:
  towers:
    text:
      tokenizer: {type: std.hf-tokenizer, model: all-MiniLM-L6-v2, max_length: 256}
      encoder:   {type: std.hf-transformer, model: all-MiniLM-L6-v2}
      poolers:   {sentence: {type: std.mean, normalize: true}}
"""


def sts_sentences(data_dir: Path, limit: int) -> list[str]:
    """Distinct sentences of STS-B dev (both columns), in file order."""
    path = data_dir / "stsb" / "dev.tsv"
    if not path.is_file():
        pytest.skip(f"STS-B dev not found at {path} (set REPMIX_SHARED_DATA to the shared data folder)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        assert header[:3] == ["score", "sentence1", "sentence2"], header
        out: list[str] = []
        seen: set[str] = set()
        for row in reader:
            for sentence in row[1:3]:
                if sentence not in seen:
                    seen.add(sentence)
                    out.append(sentence)
            if len(out) >= limit:
                break
    return out[:limit]


@pytest.fixture(scope="module")
def minilm_repmix(minilm_dir: Path):  # type: ignore[no-untyped-def]
    """The MiniLM model assembled from YAML, built once for this module."""
    data, lines = parse_yaml(MINILM_YAML, "minilm.yaml")
    return build_model(plan_model(LocatedConfig(data, lines, "minilm.yaml")))


@pytest.mark.data
def test_yaml_minilm_matches_sentence_transformers_reference(
    minilm_repmix, minilm_st, shared_data_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    batch_size = 32
    sentences = sts_sentences(shared_data_dir, NUM_STS_SENTENCES)
    assert len(sentences) >= 200
    ours = minilm_repmix.encode(sentences, tower="text", batch_size=batch_size)
    reference = minilm_st.encode(
        sentences, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.shape == reference.shape == (len(sentences), 384)
    assert ours.dtype == np.float32
    diff = float(np.abs(ours - reference).max())
    assert diff <= EMBEDDING_TOLERANCE, f"max abs difference to sentence-transformers: {diff:.3e}"
    # A wrong pooling or layer would move the vectors far more than the tolerance.
    assert float(np.abs(ours[0] - ours[1]).max()) > 100 * EMBEDDING_TOLERANCE


def _padded_batch(left: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 1, 3, 5, 2]
    t = max(lengths) + 2
    hidden = torch.randn(len(lengths), t, 16, generator=g) * 3
    mask = torch.zeros(len(lengths), t, dtype=torch.long)
    for i, n in enumerate(lengths):
        if left:
            mask[i, t - n :] = 1
        else:
            mask[i, :n] = 1
    return hidden, mask


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize(
    ("cls", "mode"),
    [(ClsPooler, "cls"), (MeanPooler, "mean"), (MaxPooler, "max"), (LastTokenPooler, "lasttoken")],
)
def test_poolers_match_sentence_transformers_pooling_reference(cls, mode: str, left: bool) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    hidden, mask = _padded_batch(left)
    reference = Pooling(hidden.shape[-1], pooling_mode=mode)(
        {"token_embeddings": hidden.clone(), "attention_mask": mask.clone()}
    )["sentence_embedding"]
    pooler = cls(cls.Config(), Runtime())
    ours = pooler(Encoded({"token": Granularity(hidden, mask.bool())})).hidden
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


class _NoModel(nn.Module):
    """Stands in for the SentenceTransformer that MNRL's constructor stores but its loss computation never uses."""


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("hard_negatives", [0, 1])
def test_mnrl_matches_sentence_transformers_reference(symmetric: bool, hard_negatives: int) -> None:
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking import (
        MultipleNegativesRankingLoss as STMNRL,
    )

    g = torch.Generator().manual_seed(1)
    b, dim, scale = 6, 24, 20.0
    columns = [torch.randn(b, dim, generator=g) for _ in range(2 + hard_negatives)]
    # Make the positives related to the anchors so the loss is not at chance level.
    columns[1] = columns[0] + 0.7 * columns[1]
    if symmetric:
        reference_loss = STMNRL(
            _NoModel(), scale=scale, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
        )
    else:
        reference_loss = STMNRL(_NoModel(), scale=scale)  # the defaults: query_to_doc, joint
    ref_inputs = [c.clone().requires_grad_(True) for c in columns]
    reference = reference_loss.compute_loss_from_embeddings(ref_inputs, labels=None)
    reference.backward()

    our_inputs = [c.clone().requires_grad_(True) for c in columns]
    anchors = Granularity(our_inputs[0])
    candidates = Granularity(torch.cat(our_inputs[1:], dim=0))
    scores = CosineAligner(CosineAligner.Config(), Runtime())(anchors, candidates)
    loss = MultipleNegativesRankingLoss(
        MultipleNegativesRankingLoss.Config(scale=scale, symmetric=symmetric), Runtime()
    )
    out = loss(LossInputs({"pairs": scores}, {}))
    out.value.backward()

    torch.testing.assert_close(out.value, reference, rtol=0, atol=1e-6)
    for ours_in, ref_in in zip(our_inputs, ref_inputs, strict=True):
        torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-5, atol=1e-7)
    assert 0.0 <= out.logs["accuracy"] <= 1.0


def _brute_force_maxsim(
    q: torch.Tensor, q_mask: torch.Tensor, d: torch.Tensor, d_mask: torch.Tensor, normalize: bool
) -> torch.Tensor:
    """Loop over every (query, document) pair and every token; no vectorisation."""
    scores = torch.zeros(q.shape[0], d.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        for j in range(d.shape[0]):
            total = 0.0
            for s in range(q.shape[1]):
                if not q_mask[i, s]:
                    continue
                best = -math.inf
                for t in range(d.shape[1]):
                    if not d_mask[j, t]:
                        continue
                    a, b = q[i, s].double(), d[j, t].double()
                    if normalize:
                        a, b = a / a.norm(), b / b.norm()
                    best = max(best, float(a @ b))
                total += best
            scores[i, j] = total
    return scores


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk_elements", [2**25, 40], ids=["one-chunk", "chunked"])
def test_maxsim_matches_brute_force_reference(normalize: bool, chunk_elements: int) -> None:
    g = torch.Generator().manual_seed(2)
    n_q, t_q, n_d, t_d, dim = 4, 5, 6, 7, 8
    q = torch.randn(n_q, t_q, dim, generator=g)
    d = torch.randn(n_d, t_d, dim, generator=g)
    q_mask = torch.zeros(n_q, t_q, dtype=torch.bool)
    d_mask = torch.zeros(n_d, t_d, dtype=torch.bool)
    for i, n in enumerate([5, 1, 3, 4]):
        q_mask[i, :n] = True
    for j, n in enumerate([7, 2, 1, 5, 3, 6]):
        d_mask[j, t_d - n :] = True  # left padding on the document side
    # Garbage in padded positions must not matter.
    q = torch.where(q_mask.unsqueeze(-1), q, torch.full_like(q, 1e4))
    d = torch.where(d_mask.unsqueeze(-1), d, torch.full_like(d, -1e4))

    aligner = MaxSimAligner(MaxSimAligner.Config(normalize=normalize, chunk_elements=chunk_elements), Runtime())
    ours = aligner(Granularity(q, q_mask), Granularity(d, d_mask)).scores
    reference = _brute_force_maxsim(q, q_mask, d, d_mask, normalize)
    assert ours.shape == (n_q, n_d)
    torch.testing.assert_close(ours.double(), reference, rtol=1e-5, atol=1e-5)

    from sentence_transformers.util.similarity import maxsim as st_maxsim

    q_in = torch.nn.functional.normalize(q, dim=-1) if normalize else q
    d_in = torch.nn.functional.normalize(d, dim=-1) if normalize else d
    torch.testing.assert_close(ours, st_maxsim(q_in, d_in, a_mask=q_mask, b_mask=d_mask), rtol=1e-5, atol=1e-5)


def _hand_row_cross_entropy(scores: list[list[float]], temperature: float) -> float:
    """Mean over rows i of -log(exp(s_ii / t) / sum_j exp(s_ij / t)), written out with loops."""
    total = 0.0
    for i, row in enumerate(scores):
        logits = [s / temperature for s in row]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(x - top) for x in logits))
        total += log_z - logits[i]
    return total / len(scores)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("extra_columns", [0, 3])
def test_info_nce_matches_hand_written_reference(symmetric: bool, learnable: bool, extra_columns: int) -> None:
    g = torch.Generator().manual_seed(3)
    n, temperature = 5, 0.07
    scores = torch.rand(n, n + extra_columns, generator=g) * 2 - 1
    loss = InfoNCELoss(
        InfoNCELoss.Config(temperature=temperature, learnable_temperature=learnable, symmetric=symmetric), Runtime()
    )
    out = loss(LossInputs({"a": Alignment(scores)}, {}))

    table = scores.double().tolist()
    expected = _hand_row_cross_entropy(table, temperature)
    if symmetric:
        # Each paired column ranks every row; the extra (negative-only) columns take no part.
        columns = [[table[i][j] for i in range(n)] for j in range(n)]
        expected = (expected + _hand_row_cross_entropy(columns, temperature)) / 2
    assert abs(out.value.item() - expected) < 1e-4 * max(1.0, abs(expected))
    assert out.logs["temperature"] == pytest.approx(temperature, rel=1e-6)
    if learnable:
        params = dict(loss.named_parameters())
        assert set(params) == {"log_inv_temperature"}
        assert params["log_inv_temperature"].item() == pytest.approx(math.log(1 / temperature), rel=1e-6)
        out.value.backward()
        assert params["log_inv_temperature"].grad is not None
        assert float(params["log_inv_temperature"].grad.abs()) > 0
    else:
        assert list(loss.parameters()) == []
