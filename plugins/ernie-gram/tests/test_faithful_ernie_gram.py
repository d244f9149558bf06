"""ERNIE-Gram's invariants (spec §13) and the loss against references.

* length identity ``L′ = L − Σ(n_i − 1)`` for every row;
* a target lies in ``V_N`` exactly when its position holds a collapsed n-gram (n ≥ 2), and that
  n-gram is the lexicon entry the target names;
* un-collapsing (each n-gram position back to its tokens, each masked token back to its target)
  gives the original row: nothing else moves or changes;
* the masking budget ``round(rate · candidates)`` is met exactly;
* the loss equals the joint-vocabulary cross-entropy written out by hand (float64, 1e-5), and with an
  empty lexicon transformers' ``BertForMaskedLM(labels=targets).loss`` (1e-6).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from ernie_gram_testing import TEXTS, TowerStub, build, write_lexicon
from repmix.sdk import LossInputs, Runtime
from repmix_ernie_gram.loss import ExplicitNgramMLMLoss


def corrupt(tokenizer: Any, masking: Any, seed: int, texts: list[str] = TEXTS) -> tuple[dict, dict, torch.Tensor]:
    batch = tokenizer(texts)
    out, grans = masking(batch, torch.Generator().manual_seed(seed))
    return batch, out, grans["targets"].hidden


def uncollapse(masking: Any, out: dict, targets: torch.Tensor, b: int) -> tuple[list[int], list[int]]:
    """Row ``b`` with every n-gram position expanded to its tokens and masked tokens restored; n per position."""
    vocab = masking.vocab_size
    row, lengths = [], []
    real = out["attention_mask"][b].bool()
    for token, target in zip(out["input_ids"][b][real].tolist(), targets[b][real].tolist()):
        if target >= vocab:
            gram = masking.lexicon.ngrams[target - vocab]
            row.extend(gram)
            lengths.append(len(gram))
        else:
            row.append(target if target != -100 else token)
            lengths.append(1)
    return row, lengths


@pytest.mark.parametrize("selection", ["segments", "ngrams-first"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_collapse_invariants(tokenizer: Any, tmp_path: Path, selection: str, seed: int) -> None:
    _, masking = build(tokenizer, write_lexicon(tmp_path, tokenizer.vocab_size), selection=selection)
    batch, out, targets = corrupt(tokenizer, masking, seed)
    vocab = masking.vocab_size
    n_ngrams = 0
    for b in range(len(TEXTS)):
        original = batch["input_ids"][b][batch["attention_mask"][b].bool()].tolist()
        row, lengths = uncollapse(masking, out, targets, b)
        assert row == original, "un-collapsing gives the original row back"
        real = out["attention_mask"][b].bool()
        length, length_after = len(original), int(real.sum())
        masked_lengths = [n for n, t in zip(lengths, targets[b][real].tolist()) if t != -100]
        assert length_after == length - sum(n - 1 for n in masked_lengths), "L' = L - sum(n - 1)"
        t = targets[b][real]
        is_ngram = t >= vocab
        assert [n >= 2 for n, tt in zip(lengths, t.tolist()) if tt != -100] == is_ngram[t != -100].tolist(), \
            "a target is in V_N exactly when its position holds an n-gram with n >= 2"
        assert bool((out["input_ids"][b][real][is_ngram] == tokenizer.mask_token_id).all()), "one [MASK] per n-gram"
        candidates = int((batch["attention_mask"][b].bool() & ~batch["special_tokens_mask"][b]).sum())
        assert sum(masked_lengths) == round(0.3 * candidates), "the masking budget is met"
        assert not bool(out["attention_mask"][b][length_after:].any()) and not bool(targets[b][length_after:].ne(-100).any())
        n_ngrams += int(is_ngram.sum())
    assert n_ngrams > 0
    assert targets.shape == batch["input_ids"].shape, "rows keep the input width (right-padded)"


def test_specials_keep_their_place_and_word_ids_follow(tokenizer: Any, tmp_path: Path) -> None:
    _, masking = build(tokenizer, write_lexicon(tmp_path, tokenizer.vocab_size), selection="ngrams-first")
    batch, out, targets = corrupt(tokenizer, masking, 3)
    for b in range(len(TEXTS)):
        real = out["attention_mask"][b].bool()
        ids = out["input_ids"][b][real]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert bool(out["special_tokens_mask"][b][real][[0, -1]].all())
        assert not bool(out["special_tokens_mask"][b][real][1:-1].any())
        assert not bool(targets[b][~real].ne(-100).any()) and bool((out["word_ids"][b][~real] == -1).all())
    assert set(out) == set(batch)


def test_selection_shares(tokenizer: Any, tmp_path: Path) -> None:
    """ngrams-first covers the budget with lexicon n-grams; segments treats every segment alike."""
    lexicon = write_lexicon(tmp_path, tokenizer.vocab_size)
    shares = {}
    for selection in ("segments", "ngrams-first"):
        _, masking = build(tokenizer, lexicon, selection=selection, rate=0.15)
        inside, total = 0, 0
        for seed in range(5):
            _, out, targets = corrupt(tokenizer, masking, seed, TEXTS * 4)
            for b in range(targets.shape[0]):
                _, lengths = uncollapse(masking, out, targets, b)
                real = out["attention_mask"][b].bool()
                for n, t in zip(lengths, targets[b][real].tolist()):
                    if t != -100:
                        total += n
                        inside += n if n > 1 else 0
        shares[selection] = inside / total
    assert shares["ngrams-first"] > 0.8 and shares["ngrams-first"] > shares["segments"] + 0.2 > 0.3, shares


# ------------------------------------------------------------------------------------------- loss
def loss_inputs(encoder: Any, masking: Any, out: dict, grans_targets: torch.Tensor) -> LossInputs:
    from repmix.sdk.lm import targets_granularity

    enc = encoder(out)
    enc.granularities["targets"] = targets_granularity(grans_targets)
    return LossInputs({}, {"text": enc}, towers={"text": TowerStub(masking)})


def test_loss_is_the_joint_vocabulary_cross_entropy(tokenizer: Any, tmp_path: Path) -> None:
    encoder, masking = build(tokenizer, write_lexicon(tmp_path, tokenizer.vocab_size), selection="ngrams-first")
    encoder.eval()
    _, out, targets = corrupt(tokenizer, masking, 4)
    inputs = loss_inputs(encoder, masking, out, targets)
    result = ExplicitNgramMLMLoss(ExplicitNgramMLMLoss.Config(), Runtime())(inputs)
    enc = inputs.outputs["text"]
    logits_f = enc["logits"].hidden.double()
    hidden = enc["token"].hidden.double()
    w = masking.ngram_head.weight.double()
    bias = masking.ngram_head.bias.double()
    total, count, ngram = 0.0, 0, 0
    for b, i in (targets != -100).nonzero().tolist():
        scores = logits_f[b, i].tolist() + (hidden[b, i] @ w.T + bias).tolist()  # <V_F, V_N>
        peak = max(scores)
        log_z = peak + math.log(sum(math.exp(s - peak) for s in scores))
        y = int(targets[b, i])
        total += log_z - scores[y]
        count += 1
        ngram += y >= masking.vocab_size
    assert ngram > 0 and count == int(result.logs["targets"])
    assert abs(float(result.value.detach()) - total / count) < 1e-5
    assert abs(result.logs["ngram_share"] - ngram / count) < 1e-9
    result.value.backward()
    assert masking.ngram_head.weight.grad is not None and bool(masking.ngram_head.weight.grad.abs().sum() > 0)
    assert all(p.grad is not None for p in encoder.lm.base_model.parameters())


def test_empty_lexicon_gives_bert_for_masked_lm(tokenizer: Any, tmp_path: Path) -> None:
    from transformers import BertForMaskedLM

    encoder, masking = build(tokenizer, write_lexicon(tmp_path, tokenizer.vocab_size, phrases=[]))
    encoder.eval()
    _, out, targets = corrupt(tokenizer, masking, 5)
    assert torch.equal(out["attention_mask"], tokenizer(TEXTS)["attention_mask"]), "nothing collapses"
    ours = ExplicitNgramMLMLoss(ExplicitNgramMLMLoss.Config(), Runtime())(loss_inputs(encoder, masking, out, targets))
    reference = BertForMaskedLM(encoder.lm.config)
    reference.load_state_dict(encoder.lm.state_dict())
    reference.eval()
    theirs = reference(input_ids=out["input_ids"], attention_mask=out["attention_mask"], labels=targets).loss
    assert torch.allclose(ours.value, theirs, atol=1e-6), (float(ours.value), float(theirs))


def test_loss_needs_the_ngram_masking(tokenizer: Any, tmp_path: Path) -> None:
    from repmix.sdk import InputError

    encoder, masking = build(tokenizer, write_lexicon(tmp_path, tokenizer.vocab_size))
    _, out, targets = corrupt(tokenizer, masking, 0)
    inputs = loss_inputs(encoder, masking, out, targets)
    inputs.towers["text"] = TowerStub(None)
    with pytest.raises(InputError, match="ernie-gram.ngram-mask corruption"):
        ExplicitNgramMLMLoss(ExplicitNgramMLMLoss.Config(), Runtime())(inputs)
