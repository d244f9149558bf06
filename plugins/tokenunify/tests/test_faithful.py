"""TokenUnify's target construction, schedule and loss against independent references.

References and tolerances:
- random token prediction with a one-hot mixture IS std's ``mlm-mask`` (``scheme: token``,
  transformers' collator rule) under the same generator: identical ids and targets (exact);
- every sub-objective's loss equals transformers' ``BertForMaskedLM(labels=targets).loss`` on the
  same logits (1e-6), and the mixture loss equals Σ_k w_k · that loss (1e-6);
- next-token targets are the token right after the kept prefix (a shift by one of the last kept
  position), next-all targets are all the tokens after it, {x_{i+1..K}} (exact, spec §19);
- the prefix length i is uniform on [1, K-1] as in the official ``np.random.randint(1, total)``
  (chi-square-free check: every value hit, frequencies within 5 standard deviations);
- the schedule is deterministic: seeded per-row draws repeat, the alternate phase switch is a
  fixed function of the batch counter.
"""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import Encoded, Granularity, LossInputs, Runtime, load_component_class
from repmix.sdk.conformance_lm import LMByteTokenizer
from repmix.sdk.lm import IGNORE_INDEX
from repmix_tokenunify.components import TARGETS, MixtureCorruptor, MixtureLoss
from repmix_tokenunify.targets import alternate_objective, prefix_blank, sample_objectives

TEXTS = ["masked language modelling corrupts some tokens", "a short one", "the quick brown fox jumps over the lazy dog",
         "next token prediction keeps a prefix and predicts what follows"]


def _corruptor(**cfg) -> MixtureCorruptor:
    return MixtureCorruptor(MixtureCorruptor.Config(**cfg), Runtime(tokenizer=LMByteTokenizer()))


def _batch():
    return LMByteTokenizer()(TEXTS)


def _cand(batch):
    return batch["attention_mask"].bool() & ~batch["special_tokens_mask"]


def test_one_hot_random_is_mlm_mask() -> None:
    pytest.importorskip("repmix_std")
    mlm_cls = load_component_class("corruptor", "std.mlm-mask")
    mlm = mlm_cls(mlm_cls.Config(rate=0.3, scheme="token"), Runtime(tokenizer=LMByteTokenizer()))
    ours = _corruptor(mixture={"random": 1.0}, rate=0.3)
    for seed in range(5):
        a_batch, a = mlm(_batch(), torch.Generator().manual_seed(seed))
        b_batch, b = ours(_batch(), torch.Generator().manual_seed(seed))
        assert torch.equal(a_batch["input_ids"], b_batch["input_ids"])
        assert torch.equal(a["targets"].hidden, b[TARGETS["random"]].hidden)
        assert not bool(b[TARGETS["next"]].mask.any()) and not bool(b[TARGETS["next_all"]].mask.any())


@pytest.mark.parametrize("objective", ["next", "next_all"])
def test_prefix_targets(objective: str) -> None:
    corr = _corruptor(mixture={objective: 1.0})
    batch = _batch()
    ids, cand = batch["input_ids"], _cand(batch)
    for seed in range(10):
        out, tg = corr(batch, torch.Generator().manual_seed(seed))
        new = out["input_ids"]
        for b in range(ids.shape[0]):
            pos = torch.nonzero(cand[b]).flatten().tolist()
            changed = [p for p in pos if new[b, p] != ids[b, p]]
            i = pos.index(changed[0])  # the kept prefix holds the first i candidates, i >= 1
            assert 1 <= i <= len(pos) - 1
            suffix = pos[i:]
            assert changed == suffix and all(int(new[b, p]) == 259 for p in suffix)  # all [MASK]
            assert torch.equal(new[b, ~cand[b]], ids[b, ~cand[b]])  # specials and padding kept
            t = tg[TARGETS[objective]].hidden[b]
            want = [suffix[0]] if objective == "next" else suffix  # x_{i+1}  |  x_{i+1..K}
            assert torch.nonzero(t != IGNORE_INDEX).flatten().tolist() == want
            assert torch.equal(t[want], ids[b, want])
            other = "next_all" if objective == "next" else "next"
            assert not bool(tg[TARGETS[other]].mask[b].any()) and not bool(tg[TARGETS["random"]].mask[b].any())


def test_prefix_length_is_uniform() -> None:
    m = 12
    cand = torch.ones(1, m, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(m, dtype=torch.long)
    trials = 5500
    for _ in range(trials):
        blank, first = prefix_blank(cand, torch.tensor([True]), 1, g)
        i = int(torch.nonzero(first[0])[0])
        assert blank[0, :i].sum() == 0 and bool(blank[0, i:].all())
        counts[i] += 1
    assert counts[0] == 0 and bool((counts[1:] > 0).all())
    p = 1 / (m - 1)
    sd = (trials * p * (1 - p)) ** 0.5
    assert bool(((counts[1:].float() - trials * p).abs() < 5 * sd).all())
    # a row too short for a prefix and a suffix predicts nothing
    blank, first = prefix_blank(torch.tensor([[True, False]]), torch.tensor([True]), 1, g)
    assert not bool(blank.any()) and not bool(first.any())


def test_fill_random() -> None:
    corr = _corruptor(mixture={"next_all": 1.0}, fill="random")
    batch = _batch()
    out, tg = corr(batch, torch.Generator().manual_seed(0))
    blanked = tg[TARGETS["next_all"]].mask
    assert not bool((out["input_ids"][blanked] == 259).all())  # random ids, not [MASK]
    assert torch.equal(tg[TARGETS["next_all"]].hidden[blanked], batch["input_ids"][blanked])


def test_schedule_is_deterministic() -> None:
    w = {"random": 1.0, "next": 0.0, "next_all": 1.0}
    assert [alternate_objective(w, s, 2) for s in range(6)] == ["random", "random", "next_all", "next_all",
                                                               "random", "random"]
    a, b = _corruptor(mixture=w, schedule="alternate", period=2), _corruptor(mixture=w, schedule="alternate", period=2)
    seq_a, seq_b = [], []
    for seed in range(6):
        _, ta = a(_batch(), torch.Generator().manual_seed(seed))
        _, tb = b(_batch(), torch.Generator().manual_seed(100 + seed))  # the phase does not depend on the seed
        seq_a.append("random" if bool(ta[TARGETS["random"]].mask.any()) else "next_all")
        seq_b.append("random" if bool(tb[TARGETS["random"]].mask.any()) else "next_all")
    assert seq_a == seq_b == ["random", "random", "next_all", "next_all", "random", "random"]
    # seeded per-row draws: same seed, same objectives and targets
    x = sample_objectives({"random": 1, "next": 1, "next_all": 1}, 50, torch.Generator().manual_seed(3))
    y = sample_objectives({"random": 1, "next": 1, "next_all": 1}, 50, torch.Generator().manual_seed(3))
    assert x == y and set(x) == {"random", "next", "next_all"}
    c1, c2 = _corruptor(), _corruptor()
    o1, t1 = c1(_batch(), torch.Generator().manual_seed(9))
    o2, t2 = c2(_batch(), torch.Generator().manual_seed(9))
    assert torch.equal(o1["input_ids"], o2["input_ids"])
    assert all(torch.equal(t1[k].hidden, t2[k].hidden) for k in t1)


def test_mixture_shares() -> None:
    picks = sample_objectives({"random": 2, "next": 1, "next_all": 1}, 8000, torch.Generator().manual_seed(0))
    share = picks.count("random") / len(picks)
    assert abs(share - 0.5) < 5 * (0.25 / 8000) ** 0.5


def _bert_logits(ids: torch.Tensor):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=260, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(cfg).eval()
    return model, model(input_ids=ids).logits


def _loss_inputs(logits: torch.Tensor, targets: dict[str, Granularity]) -> LossInputs:
    grans = {"logits": Granularity(logits, None), **targets}
    return LossInputs({}, {"text": Encoded(grans)})


@pytest.mark.parametrize("objective", ["random", "next", "next_all"])
def test_one_hot_loss_is_single_objective_loss(objective: str) -> None:
    corr = _corruptor(mixture={objective: 1.0}, rate=0.3)
    out, tg = corr(_batch(), torch.Generator().manual_seed(1))
    model, logits = _bert_logits(out["input_ids"])
    with torch.no_grad():
        ref = model(input_ids=out["input_ids"], labels=tg[TARGETS[objective]].hidden).loss
    loss = MixtureLoss(MixtureLoss.Config(), Runtime())(_loss_inputs(logits, tg))
    assert abs(float(loss.value) - float(ref)) < 1e-6
    assert abs(loss.logs[f"{objective}_loss"] - float(ref)) < 1e-6
    if objective == "next":  # hand reference: mean of -log p(x_{i+1} | prefix) at each row's first blank
        t = tg[TARGETS["next"]].hidden
        b, p = torch.nonzero(t != IGNORE_INDEX, as_tuple=True)
        hand = -torch.log_softmax(logits[b, p], -1).gather(1, t[b, p][:, None]).mean()
        assert abs(float(hand) - float(ref)) < 1e-6 and len(b) == len(TEXTS)


def test_mixture_loss_is_weighted_sum() -> None:
    corr = _corruptor(rate=0.3)
    batch = LMByteTokenizer()(TEXTS * 6)
    out, tg = corr(batch, torch.Generator().manual_seed(2))
    assert all(bool(tg[k].mask.any()) for k in TARGETS.values())  # 24 rows: every objective drawn
    model, logits = _bert_logits(out["input_ids"])
    weights = {"random": 1.0, "next": 0.5, "next_all": 2.0}
    loss = MixtureLoss(MixtureLoss.Config(weights=weights), Runtime())(_loss_inputs(logits, tg))
    with torch.no_grad():
        refs = {k: float(model(input_ids=out["input_ids"], labels=tg[name].hidden).loss) for k, name in TARGETS.items()}
    assert abs(float(loss.value) - sum(weights[k] * refs[k] for k in refs)) < 1e-5
    for k in refs:
        assert abs(loss.logs[f"{k}_loss"] - refs[k]) < 1e-6
    # each row carries exactly one objective's targets
    rows = torch.stack([tg[name].mask.any(1) for name in TARGETS.values()])
    assert bool((rows.sum(0) <= 1).all())


def test_loss_without_targets_keeps_graph() -> None:
    logits = torch.randn(2, 5, 260, requires_grad=True)
    empty = {name: Granularity(torch.full((2, 5), IGNORE_INDEX), torch.zeros(2, 5, dtype=torch.bool))
             for name in TARGETS.values()}
    out = MixtureLoss(MixtureLoss.Config(), Runtime())(_loss_inputs(logits, empty))
    out.value.backward()
    assert float(out.value) == 0.0 and logits.grad is not None
