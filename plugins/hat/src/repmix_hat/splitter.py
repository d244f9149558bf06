"""The HAT splitting rule (text) and the SMILES atom rule, offline and online.

Offline (:func:`split`, :func:`split_with_limit`) follows the HAT splitter of Neitemeier et al.
(``Aleph-Alpha-Research/hat-splitter``):

1. cut the text at Unicode (UAX #29) word boundaries;
2. cut every piece further around each punctuation character (``\\p{P}``) and at camelCase
   humps (a lowercase letter followed by an uppercase one);
3. join runs of single-space pieces;
4. build words: at most one leading single space, then at most one word piece, then every
   punctuation piece that follows; any other whitespace piece is a word of its own;
5. (``split_with_limit``) cut every word greedily into pieces of at most ``limit`` bytes
   without splitting a character; a character longer than the limit is cut into byte pieces.

``rule="smiles"`` replaces steps 1–4 by the SMILES atom regex of Schwaller et al. (2019), one
word per atom token (bracket atoms, two-letter halogens, bonds, ring closures, ...); a
character the regex does not cover becomes a word of its own and is counted.

Online (:class:`Segmenter`): the model must never let a later byte change how earlier bytes
are grouped into words, or a byte's prediction could depend on the future. The segmenter
therefore reads the bytes left to right, as HAT generates: it keeps the current word, runs
the rule on the current word plus each new character, and *finalises* every word but the
last one the rule returns; a finalised word never changes. For each byte it reports the
word it ends up in (``words``, for pooling) and the number of words finalised when the byte
was read (``known``, the word index whose predictive embedding the byte may use). Special
token ids (>= 256) and bytes that are not valid UTF-8 are words of one byte each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import regex
from uniseg.wordbreak import words as _uax29_words

Rule = Literal["text", "smiles"]

_PUNCT_PIECE = regex.compile(r"(\p{P})")
_CAMEL_HUMP = regex.compile(r"\p{Ll}(?=\p{Lu})")
_WHITESPACE_START = regex.compile(r"[\p{Z}\t\r\n\f]")
_PUNCT_START = regex.compile(r"\p{P}")

#: Schwaller et al. (2019), "Molecular Transformer", the SMILES tokenisation regex; two
#: alternatives for an unfinished bracket atom / ring-closure number at the very end of the
#: string keep the rule prefix-stable (the online segmenter reads molecules left to right),
#: and ``other`` takes any character the regex does not cover (counted).
SMILES_ATOM_PATTERN = (
    r"\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|\%[0-9]{2}|[0-9]"
)
_SMILES = regex.compile(rf"(?P<atom>{SMILES_ATOM_PATTERN})|(?P<open>\[[^\]]*$|%[0-9]?$)|(?P<other>(?s:.))")


def _text_pieces(text: str) -> list[str]:
    """Steps 1–3: UAX #29 words, cut around punctuation and at camelCase humps, single spaces joined."""
    pieces: list[str] = []
    for word in _uax29_words(text):
        for part in _PUNCT_PIECE.split(word):
            if not part:
                continue
            start = 0
            for hump in _CAMEL_HUMP.finditer(part):
                pieces.append(part[start : hump.end()])
                start = hump.end()
            pieces.append(part[start:])
    joined: list[str] = []
    spaces = ""
    for piece in pieces:
        if piece == " ":
            spaces += piece
            continue
        if spaces:
            joined.append(spaces)
            spaces = ""
        joined.append(piece)
    if spaces:
        joined.append(spaces)
    return joined


def _group_words(pieces: list[str]) -> list[str]:
    """Step 4: [one single space] + [one word piece] + [punctuation pieces]; other whitespace alone."""
    words: list[str] = []
    i, n = 0, len(pieces)
    while i < n:
        piece = pieces[i]
        if _WHITESPACE_START.match(piece) and piece != " ":
            words.append(piece)
            i += 1
            continue
        word = ""
        if piece == " ":
            word += piece
            i += 1
        if i < n and not _WHITESPACE_START.match(pieces[i]) and not _PUNCT_START.match(pieces[i]):
            word += pieces[i]
            i += 1
        while i < n and _PUNCT_START.match(pieces[i]):
            word += pieces[i]
            i += 1
        if word:
            words.append(word)
    return words


@lru_cache(maxsize=1 << 16)
def _split_text_cached(text: str) -> tuple[str, ...]:
    return tuple(_group_words(_text_pieces(text)))


def smiles_tokens(text: str) -> list[tuple[str, bool]]:
    """SMILES atom tokens of ``text``, each with ``True`` when the atom regex did not cover it."""
    return [(m.group(0), m.lastgroup == "other") for m in _SMILES.finditer(text)]


@lru_cache(maxsize=1 << 16)
def _split_smiles_cached(text: str) -> tuple[str, ...]:
    return tuple(m.group(0) for m in _SMILES.finditer(text))


def split(text: str, rule: Rule = "text") -> list[str]:
    """Words of ``text`` under ``rule`` (no length limit); ``"".join(split(t)) == t``."""
    if rule == "smiles":
        return list(_split_smiles_cached(text))
    return list(_split_text_cached(text))


def limit_word(word: bytes | str, limit: int) -> list[bytes]:
    """Cut one word greedily into pieces of at most ``limit`` bytes, never inside a character;
    a character longer than ``limit`` bytes is cut into byte pieces of its own."""
    if limit < 1:
        raise ValueError(f"the word-length limit must be at least 1 byte, got {limit}")
    chars = [c.encode("utf-8", "surrogateescape") for c in word] if isinstance(word, str) else [word]
    pieces: list[bytes] = []
    current = b""
    for ch in chars:
        if len(ch) > limit:
            if current:
                pieces.append(current)
                current = b""
            pieces.extend(ch[i : i + limit] for i in range(0, len(ch), limit))
            continue
        if len(current) + len(ch) > limit:
            pieces.append(current)
            current = b""
        current += ch
    if current:
        pieces.append(current)
    return pieces


def split_with_limit(text: str, limit: int, rule: Rule = "text") -> list[bytes]:
    """Words of ``text`` as UTF-8 bytes, each word cut into pieces of at most ``limit`` bytes."""
    return [piece for word in split(text, rule) for piece in limit_word(word, limit)]


# ----------------------------------------------------------------------------------- online
def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 sequence a lead byte starts (1–4), or 0 when it cannot start one."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _continues(pending: list[int], byte: int) -> bool:
    """Whether ``byte`` is a valid next byte of the unfinished UTF-8 sequence ``pending``."""
    if len(pending) == 1:
        lo, hi = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}.get(
            pending[0], (0x80, 0xBF))
        return lo <= byte <= hi
    return 0x80 <= byte <= 0xBF


@dataclass
class Segmentation:
    """Words of one row of ids, as the online segmenter found them.

    ``words[t]``: the word byte ``t`` belongs to (final; -1 outside the row);
    ``known[t]``: how many words were finalised when byte ``t`` was read (byte ``t`` may use
    the predictive embedding of word ``known[t]``, which depends on words ``< known[t]`` only);
    ``num_words``; ``counts``: fallbacks taken (``invalid_bytes``: bytes that are not valid
    UTF-8, each a word of its own; ``long_word_cuts``: words ended by the length limit;
    ``special``: special-token words).
    """

    words: list[int]
    known: list[int]
    num_words: int
    counts: Counter[str] = field(default_factory=Counter)


class Segmenter:
    """The online HAT segmentation of byte ids (see the module docs), under ``rule`` and a word limit."""

    def __init__(self, rule: Rule = "text", max_word_size: int = 64) -> None:
        if max_word_size < 4:
            raise ValueError(f"max_word_size must be at least 4 bytes (one UTF-8 character), got {max_word_size}")
        self.rule: Rule = rule
        self.max_word_size = max_word_size
        self._split = _split_smiles_cached if rule == "smiles" else _split_text_cached

    def segment(self, ids: Sequence[int]) -> Segmentation:
        """Segment one row of ids: bytes 0–255, anything else a special token (a word of its own)."""
        n = len(ids)
        words = [-1] * n
        known = [0] * n
        counts: Counter[str] = Counter()
        done = 0  # words finalised so far
        cur: list[tuple[str, list[int]]] = []  # the current word: (character, its byte positions)
        cur_bytes = 0
        isolated = False  # the current word is a special token or an invalid byte: closed at the next byte
        pending: list[int] = []  # bytes of an unfinished UTF-8 character
        pending_pos: list[int] = []
        limit = self.max_word_size
        split = self._split

        def finalise(units: list[tuple[str, list[int]]]) -> None:
            nonlocal done
            for _, positions in units:
                for p in positions:
                    words[p] = done
            done += 1

        def close_current() -> None:
            nonlocal cur, cur_bytes, isolated
            if cur:
                finalise(cur)
            cur, cur_bytes, isolated = [], 0, False

        def single(positions: list[int], what: str) -> None:
            nonlocal cur, isolated
            close_current()
            counts[what] += 1
            cur, isolated = [("", positions)], True

        def add_char(ch: str, positions: list[int]) -> None:
            nonlocal cur, cur_bytes, isolated
            if isolated:
                close_current()
            size = len(positions)
            if not cur:
                cur, cur_bytes = [(ch, positions)], size
                return
            pieces = split("".join(c for c, _ in cur) + ch)
            if len(pieces) > 1:  # the rule closed one or more words before the last piece
                units = cur
                k = 0
                for piece in pieces[:-1]:
                    taken, length = [], 0
                    while length < len(piece):
                        taken.append(units[k])
                        length += len(units[k][0])
                        k += 1
                    finalise(taken)
                cur = units[k:]
                cur_bytes = sum(len(p) for _, p in cur)
            if cur and cur_bytes + size > limit:  # the word would outgrow the limit: it ends here
                counts["long_word_cuts"] += 1
                close_current()
            cur.append((ch, positions))
            cur_bytes += size

        def flush_invalid() -> None:
            nonlocal pending, pending_pos
            for p in pending_pos:
                single([p], "invalid_bytes")
            pending, pending_pos = [], []

        for t in range(n):
            b = int(ids[t])
            if not 0 <= b < 256:
                flush_invalid()
                single([t], "special")
            else:
                if pending and not _continues(pending, b):
                    flush_invalid()
                if pending:
                    pending.append(b)
                    pending_pos.append(t)
                else:
                    length = _utf8_length(b)
                    if length == 0:
                        single([t], "invalid_bytes")
                    elif length == 1:
                        add_char(chr(b), [t])
                    else:
                        pending, pending_pos = [b], [t]
                if pending and len(pending) == _utf8_length(pending[0]):
                    ch = bytes(pending).decode("utf-8")
                    positions = pending_pos
                    pending, pending_pos = [], []
                    add_char(ch, positions)
            known[t] = done
        flush_invalid()
        close_current()
        return Segmentation(words, known, done, counts)
