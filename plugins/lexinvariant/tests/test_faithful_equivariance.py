"""Faithfulness (the paper's defining property): exact vocabulary-permutation equivariance, the shared
unseen bucket, causality, and the per-sequence seeded Gaussian embeddings."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import ConfigError, InputError, Runtime
from repmix.sdk.conformance_lm import LMByteTokenizer

from repmix_lexinvariant.model import LexinvariantLM, first_occurrence_ranks

ARCH = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64}


def _model(**over: object) -> LexinvariantLM:
    torch.manual_seed(0)
    return LexinvariantLM(LexinvariantLM.Config(architecture=ARCH, **over), Runtime(tokenizer=LMByteTokenizer())).eval()


IDS = torch.tensor([[257, 5, 9, 5, 7, 9, 9, 3, 5, 11], [257, 1, 1, 1, 2, 2, 3, 258, 256, 256]])
MASK = (IDS != 256).long()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_equivariance_is_exact(seed: int) -> None:
    """logits(pi(x))[pi(v)] == logits(x)[v] bit for bit, for random permutations pi of the vocabulary."""
    m = _model()
    perm = torch.randperm(260, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        a = m({"input_ids": IDS, "attention_mask": MASK})["logits"].hidden
        b = m({"input_ids": perm[IDS], "attention_mask": MASK})["logits"].hidden
        la, _ = m.next_logprobs(IDS[:1])
        lb, _ = m.next_logprobs(perm[IDS[:1]])
    assert torch.equal(b[:, :, perm], a)
    torch.testing.assert_close(lb[0][:, perm], la[0], rtol=0, atol=2e-6)  # log-softmax sums in another order


def test_equivariance_in_training_mode_under_the_same_draw() -> None:
    m = _model()
    m.train()
    perm = torch.randperm(260, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(3)
    a = m({"input_ids": IDS, "attention_mask": MASK})["logits"].hidden
    torch.manual_seed(3)
    b = m({"input_ids": perm[IDS], "attention_mask": MASK})["logits"].hidden
    assert torch.equal(b[:, :, perm], a)


def test_unseen_tokens_share_one_logit_and_seen_ones_do_not() -> None:
    m = _model()
    with torch.no_grad():
        logits = m({"input_ids": IDS, "attention_mask": MASK})["logits"].hidden[0]
    # position 2 has seen 257, 5, 9: every other id gets the unseen logit
    seen = {257, 5, 9}
    unseen = [v for v in range(260) if v not in seen]
    assert torch.unique(logits[2, unseen]).numel() == 1
    assert all(logits[2, v] != logits[2, unseen[0]] for v in seen)
    # 7 occurs at position 4: unseen at position 2 and 3, its own logit from position 4 on
    assert logits[3, 7] == logits[3, 0] and logits[4, 7] != logits[4, 0]


def test_causal() -> None:
    m = _model()
    other = IDS[:1].clone()
    other[0, 5:] = torch.tensor([100, 101, 5, 7, 200])
    la, _ = m.next_logprobs(IDS[:1])
    lb, _ = m.next_logprobs(other)
    assert torch.equal(la[0, :5], lb[0, :5])
    first, cache = m.next_logprobs(IDS[:1, :4])
    rest, _ = m.next_logprobs(IDS[:1, 4:], cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), la, rtol=0, atol=1e-5)


def test_embedding_is_per_token_within_a_sequence_and_redrawn_across_sequences() -> None:
    """Training draws: the same token has the same vector everywhere in a sequence; sequences get new ones."""
    m = _model()
    m.train()
    rank, seen, vocab_of_rank = first_occurrence_ranks(IDS, MASK.bool(), 260)
    assert rank[0].tolist() == [0, 1, 2, 1, 3, 2, 2, 4, 1, 5] and seen[0, -1] == 6
    assert vocab_of_rank[0, :6].tolist() == [257, 5, 9, 7, 3, 11] and vocab_of_rank[1, 5:].tolist() == [260] * 5
    torch.manual_seed(0)
    t1 = m._table(2, 10, IDS.device)
    torch.manual_seed(0)
    t2 = m._table(2, 10, IDS.device)
    assert torch.equal(t1, t2)  # seeded by torch's global generator (train.seed)
    assert not torch.equal(t1[0], t1[1])  # a fresh draw per sequence
    std = m._table(64, 63, IDS.device).std()
    assert abs(float(std) - 32 ** -0.5) < 0.01  # N(0, sigma^2) with sigma = 1/sqrt(D)


def test_evaluation_draw_is_seeded_and_draws_average() -> None:
    m0, m0b, m1 = _model(eval_seed=0), _model(eval_seed=0), _model(eval_seed=1)
    a, _ = m0.next_logprobs(IDS[:1])
    assert torch.equal(a, m0b.next_logprobs(IDS[:1])[0])
    assert not torch.equal(a, m1.next_logprobs(IDS[:1])[0])
    avg, _ = _model(eval_draws=3).next_logprobs(IDS[:1])
    torch.testing.assert_close(avg.exp().sum(-1), torch.ones(1, 10))


def test_bad_inputs() -> None:
    m = _model()
    with pytest.raises(InputError, match="outside 0..259"):
        m({"input_ids": torch.tensor([[1, 300]]), "attention_mask": torch.ones(1, 2, dtype=torch.long)})
    with pytest.raises(ConfigError, match="max_length 512 exceeds the model's 64 positions"):
        tok = LMByteTokenizer()
        tok.max_length = 512
        LexinvariantLM(LexinvariantLM.Config(architecture=ARCH), Runtime(tokenizer=tok))
