"""Which adjacent tokens may merge, and the merged token's string (``Dynamic_BPE.is_valid_pair``).

The official rule: a pair is valid when neither token is special and the concatenated string is
still one *pretoken* (boundary ``pretokens``) or holds no whitespace (``word``); a spacelike
character may not appear after the first position unless the whole token is spacelike (and
``"\\n\\n"`` never merges). The official code checks the pretoken rule on byte-level strings with
the hypernetwork tokenizer's pre-tokenizer (the GPT-2 split regex for Mistral's).

Two base-tokenizer families are handled:

* **WordPiece** (BERT, e.g. all-MiniLM-L6-v2): the pre-tokenizer splits on whitespace and
  punctuation, and a token continues the previous pretoken exactly when it starts with ``##``.
  So ``(a, b)`` is valid iff neither is special and ``b`` starts with ``##``; the merged string
  is ``a + b[2:]`` (``reg`` + ``##ulate`` -> ``regulate``; ``##on`` + ``##uc`` -> ``##onuc``).
  ``word`` and ``pretokens`` coincide for BERT (its pretokens are the words between spaces and
  punctuation).
* **SentencePiece / byte-level BPE** (Mistral, Llama, GPT-2): tokens carry the space as ``▁``
  (or ``Ġ``); the merged string is ``a + b`` and validity follows the official rule, with the
  GPT-2 split regex of ``tokenizers``' ``ByteLevel`` pre-tokenizer for ``pretokens``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Literal

Boundary = Literal["pretokens", "word"]

#: How spacelike characters are written inside SentencePiece and byte-level tokens.
_SPACELIKE = {"▁": " ", "Ġ": " ", "Ċ": "\n", "ĉ": "\t"}
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def wordpiece_rules(
    specials: Collection[str], prefix: str = "##"
) -> tuple[Callable[[str, str], bool], Callable[[str, str], str]]:
    """``(is_valid, concat)`` for a WordPiece base tokenizer with continuation ``prefix``."""
    special = frozenset(specials)

    def is_valid(a: str, b: str) -> bool:
        return a not in special and b not in special and b.startswith(prefix) and len(b) > len(prefix)

    def concat(a: str, b: str) -> str:
        return a + b[len(prefix):]

    return is_valid, concat


_SPACELIKE_TABLE = str.maketrans(_SPACELIKE)


def _surface(token: str) -> str | None:
    """The text a SentencePiece/byte-level token stands for; ``None`` for a byte that is not text alone."""
    if token.startswith("<0x"):
        m = _BYTE_FALLBACK.match(token)
        if m is not None:
            value = int(m.group(1), 16)
            return chr(value) if value < 0x80 else None
    return token.translate(_SPACELIKE_TABLE)


def metaspace_rules(
    specials: Collection[str], boundary: Boundary = "pretokens"
) -> tuple[Callable[[str, str], bool], Callable[[str, str], str]]:
    """``(is_valid, concat)`` for a SentencePiece (``▁``) or byte-level (``Ġ``) BPE base tokenizer."""
    from tokenizers import pre_tokenizers

    special = frozenset(specials)
    splitter = (
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if boundary == "pretokens"
        else pre_tokenizers.WhitespaceSplit()
    )

    @lru_cache(maxsize=1 << 18)
    def is_valid(a: str, b: str) -> bool:
        if a in special or b in special:
            return False
        sa, sb = _surface(a), _surface(b)
        if sa is None or sb is None:
            return True  # a byte that is not text alone: the official code cannot test it either
        text = sa + sb
        rest = text[1:]
        # a spacelike character after the first position: only in an all-spacelike token, never "\n\n"
        if (" " in rest or "\n" in rest or "\t" in rest) and (text == "\n\n" or text.strip(" \n\t") != ""):
            return False
        return len(splitter.pre_tokenize_str(text)) == 1

    def concat(a: str, b: str) -> str:
        return a + b

    return is_valid, concat
