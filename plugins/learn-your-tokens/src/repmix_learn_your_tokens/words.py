"""Word segmentation of byte streams, decided left to right: ``whitespace``, ``punctuation``, ``smiles``.

A word-pooled causal LM predicts byte ``t`` from bytes ``< t`` while running its backbone
over *words*, so whether byte ``t`` starts a new word must be decidable from bytes ``<= t``
alone (a prefix rule): a word is complete as soon as the next one starts, and never
changes afterwards. All three rules here are such left-to-right state machines over ids
(bytes 0-255 and the special ids above 255); :func:`word_starts` is the one
implementation the tokenizer and the encoders use.

* ``whitespace`` (Learn Your Tokens: split on whitespace): a word is a run of whitespace
  followed by a run of non-whitespace (``"Vitamin D"`` -> ``"Vitamin"``, ``" D"``): a
  whitespace byte after a non-whitespace byte starts a word.
* ``punctuation``: as ``whitespace``, and every ASCII punctuation character starts its
  own word (keeping the whitespace before it): ``"(p < 0.05)."`` ->
  ``"(", "p", " <", " 0", ".", "05", ")", "."``; a letter or digit after a punctuation
  character starts a word. Bytes >= 128 (UTF-8 multi-byte characters) count as letters.
* ``smiles``: the SMILES atom regex of Schwaller et al. (2019), :data:`SMILES_REGEX`:
  bracket atoms ``[...]``, ``Br``, ``Cl``, two-digit ring labels ``%NN``, and one
  character for every other atom, bond, branch or ring digit. A byte the regex does not
  match (a space, a stray letter) is a one-byte word (counted by the tokenizer).

In every rule a special id (BOS, EOS, ...) is a word of its own, the first position of a
row starts a word, and a word that reaches ``max_word_bytes`` bytes is cut: the next byte
starts a new word (chunks of the limit; the tokenizer counts them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

Split = Literal["whitespace", "punctuation", "smiles"]
SPLITS: tuple[str, ...] = ("whitespace", "punctuation", "smiles")

#: Schwaller et al. (2019), Molecular Transformer, the SMILES tokenization regex (reference for tests).
SMILES_REGEX = (
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|\%[0-9]{2}|[0-9])"
)
SMILES_PATTERN = re.compile(SMILES_REGEX)

_WS = frozenset(b" \t\n\r\x0b\x0c")
_PUNCT = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
#: single-character SMILES tokens of the regex (atoms, bonds, branches, ring digits, ...).
_SMILES_SINGLE = frozenset(b"BCNOSPFIbcnops()[.=#-+\\/:~@?>*$%0123456789")
_DIGITS = frozenset(b"0123456789")
_B, _C, _R, _L = ord("B"), ord("C"), ord("r"), ord("l")
_OPEN, _CLOSE, _PERCENT = ord("["), ord("]"), ord("%")


def row_word_starts(ids: Sequence[int], split: str, max_word_bytes: int) -> tuple[list[bool], int]:
    """Word starts of one row of ids (all real positions) and the number of SMILES bytes the regex does not match.

    ``ids[t]`` >= 256 is a special id. The decision at ``t`` reads ``ids[:t + 1]`` only.
    """
    starts: list[bool] = []
    unmatched = 0
    prev = -1            # previous id (-1: row start)
    length = 0           # bytes in the current word
    after_special = True  # the next byte starts a word (row start, or after a special id)
    in_bracket = False   # smiles: inside [...]
    digits_left = 0      # smiles: ring-label digits still expected after '%'
    word_first = -1      # smiles: the first byte of the current word (for Br / Cl)
    for b in ids:
        if b >= 256:
            starts.append(True)
            after_special, length, prev = True, 0, b
            in_bracket, digits_left, word_first = False, 0, -1
            continue
        if after_special:
            start = True
        elif split == "whitespace":
            start = b in _WS and prev not in _WS
        elif split == "punctuation":
            # whitespace and punctuation start a word unless whitespace leads them; letters after punctuation
            start = prev not in _WS if (b in _WS or b in _PUNCT) else prev in _PUNCT
        else:  # smiles: inside [...], the digits of %NN, and the r of Br / l of Cl continue the token
            continues = (in_bracket or (digits_left > 0 and b in _DIGITS)
                         or (length == 1 and ((word_first == _B and b == _R) or (word_first == _C and b == _L))))
            start = not continues
        if split == "smiles":
            if in_bracket and not start:
                if b == _CLOSE:
                    in_bracket = False
            elif digits_left and not start:
                digits_left -= 1
            else:  # a new token (the regex's view; a cut below does not change it)
                in_bracket = b == _OPEN
                digits_left = 2 if b == _PERCENT else 0
                word_first = b
                if b not in _SMILES_SINGLE:
                    unmatched += 1
        if not start and length >= max_word_bytes:
            start = True  # chunk of the limit
        if start:
            length = 0
        starts.append(start)
        length += 1
        after_special = False
        prev = b
    return starts, unmatched


def word_starts(ids: Tensor, mask: Tensor | None, split: str, max_word_bytes: int) -> Tensor:
    """``[B, T]`` bool: True where a real position starts a word (False at padding).

    Rows are right-padded (``mask`` True on a prefix of each row); ``mask`` None means
    every position is real.
    """
    rows = ids.detach().cpu().tolist()
    lengths = ([len(r) for r in rows] if mask is None
               else mask.detach().bool().sum(1).cpu().tolist())
    out = torch.zeros(ids.shape, dtype=torch.bool)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        if n:
            out[i, :n] = torch.tensor(row_word_starts(row[:n], split, max_word_bytes)[0], dtype=torch.bool)
    return out.to(ids.device)


def split_words(data: bytes, split: str, max_word_bytes: int) -> list[bytes]:
    """The words of ``data`` (no special ids) under ``split``: a readable view of :func:`row_word_starts`."""
    starts, _ = row_word_starts(list(data), split, max_word_bytes)
    words: list[bytes] = []
    for b, s in zip(data, starts):
        if s or not words:
            words.append(bytes([b]))
        else:
            words[-1] += bytes([b])
    return words
