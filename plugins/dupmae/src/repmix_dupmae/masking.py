"""Whole-word masking as DupMAE's collator does it (transformers' ``DataCollatorForWholeWordMask``).

All randomness comes from torch's global generator (seeded by repmix), never from Python's
``random``, so a run is reproducible from its seed.

* :func:`word_groups` — positions grouped into words: a ``##`` continuation joins the previous
  word; special tokens ([CLS], [SEP], [PAD], ...) belong to no word;
* :func:`whole_word_mask` — shuffle the words, then take whole words while the number of
  covered positions stays within ``max(1, round(n_tokens * p))`` (a word that would exceed it
  is skipped and the next one tried), as ``_whole_word_mask``;
* :func:`corrupt` — BERT's replacement of the chosen positions: 80 % [MASK], 10 % a random
  token, 10 % unchanged (``torch_mask_tokens``); labels are -100 elsewhere;
* :func:`decoder_attention` — RetroMAE's per-row decoder masks: ``min(n, 256)`` whole-word masks
  drawn at ``p_dec`` per text, row i picks one at random and additionally masks position i.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: transformers' DataCollatorForWholeWordMask caps the masked positions per text at 512.
MAX_PREDICTIONS = 512
#: RetroMAE pre-samples at most this many decoder masks per text.
MAX_MASK_SETS = 256


def word_groups(ids: list[int], special: Tensor, continuation: Tensor) -> list[list[int]]:
    """Positions of ``ids`` grouped into whole words (special tokens excluded)."""
    groups: list[list[int]] = []
    for pos, tid in enumerate(ids):
        if bool(special[tid]):
            continue
        if groups and bool(continuation[tid]):
            groups[-1].append(pos)
        else:
            groups.append([pos])
    return groups


def whole_word_mask(groups: list[list[int]], num_tokens: int, prob: float) -> list[int]:
    """Positions covered by whole words drawn until ``max(1, round(num_tokens * prob))`` positions."""
    budget = min(MAX_PREDICTIONS, max(1, round(num_tokens * prob)))
    covered: list[int] = []
    for gi in torch.randperm(len(groups)).tolist():
        if len(covered) >= budget:
            break
        group = groups[gi]
        if len(covered) + len(group) > budget:
            continue
        covered.extend(group)
    return covered


def corrupt(
    input_ids: Tensor, chosen: Tensor, mask_id: int, vocab_size: int, mask_fraction: float = 0.8, random_fraction: float = 0.5
) -> tuple[Tensor, Tensor]:
    """BERT corruption of the ``chosen`` positions: (corrupted ids, labels with -100 where not chosen).

    Of the chosen positions ``mask_fraction`` become [MASK]; of the rest ``random_fraction``
    become a uniformly random token (so 10 % / 10 % with the defaults), the others stay.
    """
    labels = input_ids.masked_fill(~chosen, -100)
    replaced = torch.bernoulli(torch.full(input_ids.shape, mask_fraction)).bool().to(input_ids.device) & chosen
    corrupted = input_ids.masked_fill(replaced, mask_id)
    randomised = torch.bernoulli(torch.full(input_ids.shape, random_fraction)).bool().to(input_ids.device) & chosen & ~replaced
    random_ids = torch.randint(vocab_size, input_ids.shape, dtype=input_ids.dtype).to(input_ids.device)
    return torch.where(randomised, random_ids, corrupted), labels


def encoder_mask(input_ids: Tensor, attention_mask: Tensor, special: Tensor, continuation: Tensor, prob: float) -> Tensor:
    """[B, L] bool: the positions whole-word masked at ``prob`` in each text."""
    chosen = torch.zeros(input_ids.shape, dtype=torch.bool)
    ids_cpu, att_cpu = input_ids.cpu(), attention_mask.cpu().bool()
    for b in range(input_ids.shape[0]):
        real = att_cpu[b].nonzero().flatten().tolist()
        ids = [int(ids_cpu[b, p]) for p in real]
        groups = [[real[i] for i in g] for g in word_groups(ids, special, continuation)]
        for pos in whole_word_mask(groups, len(real), prob):
            chosen[b, pos] = True
    return chosen.to(input_ids.device)


def decoder_attention(input_ids: Tensor, attention_mask: Tensor, special: Tensor, continuation: Tensor, prob: float) -> Tensor:
    """[B, L, L] bool, True = row i may attend to column j (RetroMAE's enhanced-decoding masks).

    For a text of n real tokens, ``min(n, 256)`` whole-word masks are drawn at ``prob``; each
    real row i takes one of them at random and also masks column i itself (a token never sees
    itself); padded columns are never visible. Padded rows (no prediction there) may see the
    first real position only, so no row is empty.
    """
    bsz, length = input_ids.shape
    allowed = torch.zeros(bsz, length, length, dtype=torch.bool)
    ids_cpu, att_cpu = input_ids.cpu(), attention_mask.cpu().bool()
    for b in range(bsz):
        real = att_cpu[b].nonzero().flatten().tolist()
        ids = [int(ids_cpu[b, p]) for p in real]
        groups = [[real[i] for i in g] for g in word_groups(ids, special, continuation)]
        sets = min(len(real), MAX_MASK_SETS)
        masks = torch.zeros(sets, length, dtype=torch.bool)
        for s in range(sets):
            masks[s, whole_word_mask(groups, len(real), prob)] = True
        picks = torch.randint(sets, (len(real),)).tolist()
        visible = att_cpu[b]
        for row, pos in enumerate(real):
            hidden = masks[picks[row]].clone()
            hidden[pos] = True
            allowed[b, pos] = visible & ~hidden
        padded_rows = (~visible).nonzero().flatten()
        allowed[b, padded_rows, real[0]] = True
    return allowed.to(input_ids.device)
