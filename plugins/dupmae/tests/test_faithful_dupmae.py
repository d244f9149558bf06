"""Faithfulness of DupMAE's pieces to the official code's formulas (hand-derived: no pip reference exists).

Reference: staoxiao/RetroMAE ``src/pretrain/modeling_duplex.py`` (``ot_embedding``,
``decoder_ot_loss``) and ``data.py`` (``DupMAECollator``: bag-of-words weights, decoder masks),
re-derived by hand below with explicit loops; tolerance 1e-6 (float32).
"""

from __future__ import annotations

import math

import torch
from repmix.sdk import Encoded, Granularity, Runtime
from repmix_dupmae.loss import bag_of_words_loss, bag_of_words_weights
from repmix_dupmae.masking import decoder_attention, whole_word_mask, word_groups
from repmix_dupmae.poolers import OrdinaryTokenPooler, ordinary_token_vector


def test_bow_loss_equals_a_hand_computation() -> None:
    # vocabulary of 6; two texts: [CLS] 2 3 2 [SEP] and [CLS] 4 [SEP] [PAD] [PAD]; ids 0 = PAD, 1 = CLS, 5 = SEP
    ids = torch.tensor([[1, 2, 3, 2, 5], [1, 4, 5, 0, 0]])
    mask = ids != 0
    special = torch.tensor([True, True, False, False, False, True])
    content = mask & ~special[ids]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, generator=g)
    ot = ordinary_token_vector(logits, mask)
    weights = bag_of_words_weights(ids, content, 6)
    loss = bag_of_words_loss(ot, weights)

    # by hand: e_ot = max over positions 1..n-1 (including [SEP]); w = 1/L on distinct content tokens
    expected_terms = []
    texts = [([2, 3, 2], 5), ([4], 3)]
    for b, (tokens, n) in enumerate(texts):
        e = [max(float(logits[b, t, v]) for t in range(1, n)) for v in range(6)]
        log_z = math.log(sum(math.exp(x) for x in e))
        length = len(tokens)
        w = {v: 1.0 / length for v in set(tokens)}
        expected_terms.append(-sum(wv * (e[v] - log_z) for v, wv in w.items()))
        torch.testing.assert_close(ot[b], torch.tensor(e), atol=1e-6, rtol=0)
        # sum of the weights = #distinct / L (a repeated token counts once)
        assert abs(float(weights[b].sum()) - len(set(tokens)) / length) < 1e-7
    assert abs(float(loss) - sum(expected_terms) / 2) < 1e-6


def test_ot_vector_matches_the_official_formula_and_ignores_padding() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 7, generator=g)
    att = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    # official: reps = max(logits[:, 1:] + (1 - mask[:, 1:]) * -1000, dim=1)
    official = (logits[:, 1:] + (1 - att[:, 1:].unsqueeze(-1)) * -1000).max(dim=1).values
    ours = ordinary_token_vector(logits, att.bool())
    torch.testing.assert_close(ours, official, atol=1e-6, rtol=0)
    # appending padding (with garbage) leaves e_ot unchanged
    pooler = OrdinaryTokenPooler(OrdinaryTokenPooler.Config(), Runtime())
    garbage = torch.cat([logits, torch.full((3, 4, 7), 1e4)], dim=1)
    longer = torch.cat([att.bool(), torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    padded = pooler(Encoded({"vocab": Granularity(garbage, longer)})).hidden
    torch.testing.assert_close(padded, ours, atol=0, rtol=0)


def test_decoder_rows_never_see_themselves() -> None:
    torch.manual_seed(0)
    special = torch.zeros(20, dtype=torch.bool)
    special[[0, 1, 2]] = True  # PAD, CLS, SEP
    continuation = torch.zeros(20, dtype=torch.bool)
    continuation[[10, 11]] = True  # "##" pieces
    ids = torch.tensor([[1, 5, 10, 6, 7, 11, 8, 2], [1, 9, 4, 2, 0, 0, 0, 0]])
    att = ids != 0
    allowed = decoder_attention(ids, att, special, continuation, 0.5)
    assert allowed.shape == (2, 8, 8)
    for b in range(2):
        n = int(att[b].sum())
        for i in range(n):
            assert not allowed[b, i, i]  # row i never attends to position i
            assert not allowed[b, i, n:].any()  # nor to padding
            if i != 0:
                assert allowed[b, i, 0]  # [CLS] (h_cls) is never masked for other rows
            assert allowed[b, i].any()
        for i in range(n, 8):  # padded rows see exactly one real position (no empty softmax)
            assert int(allowed[b, i].sum()) == 1


def test_whole_word_masking_takes_whole_words_within_the_budget() -> None:
    special = torch.zeros(20, dtype=torch.bool)
    special[[0, 1, 2]] = True
    continuation = torch.zeros(20, dtype=torch.bool)
    continuation[[10, 11, 12]] = True
    ids = [1, 5, 10, 11, 6, 7, 12, 8, 9, 2]  # words: [1,2,3] [4] [5,6] [7] [8]
    groups = word_groups(ids, special, continuation)
    assert groups == [[1, 2, 3], [4], [5, 6], [7], [8]]
    for seed in range(30):
        torch.manual_seed(seed)
        chosen = whole_word_mask(groups, len(ids), 0.3)  # budget round(10 * 0.3) = 3
        assert 1 <= len(chosen) <= 3
        for g in groups:
            assert set(g) <= set(chosen) or not set(g) & set(chosen)  # a word is masked whole or not at all
        assert not {0, 9} & set(chosen)  # [CLS] / [SEP] never
