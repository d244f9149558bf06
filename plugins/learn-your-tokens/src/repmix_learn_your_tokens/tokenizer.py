"""``word-bytes``: UTF-8 bytes with word boundaries, the tokenizer of the word-pooled byte LMs.

Ids are those of ``std.lm-tokenizer``'s ``bytes`` algorithm (bytes 0-255, then ``[PAD]
[UNK] [BOS] [EOS] [MASK]`` = 256-260), so std's causal-LM loss, packing and bits-per-byte
evaluators read it unchanged (``encode_plain``, ``bos_token_id``, ``eos_token_id``,
``max_length``, ``decode``, ``token_bytes``). What it adds is the word rule
(:mod:`repmix_learn_your_tokens.words`): ``word_starts(ids, mask)``, which the
encoders call on every batch, and ``word_ids`` in each batch.

Bad input, one message or a counted fallback each:

* an empty string (or ``b""``): refused (``check_item`` / ``__call__``: one
  :class:`~repmix.sdk.InputError`); ``encode_plain("")`` is ``[]`` (a document with no
  bytes scores nothing, as in std);
* whitespace-only text: a fallback, one whitespace word (chunked at the limit), counted in
  ``fallbacks["whitespace_only"]``;
* bytes that are not UTF-8 (an item given as ``bytes``; or a ``str`` with a lone
  surrogate, which has no UTF-8 encoding): refused, naming the byte offset and value;
* a word longer than ``max_word_bytes``: with ``long_words: split`` (default) cut into
  chunks of the limit, counted in ``fallbacks["long_words"]`` (words cut) and
  ``fallbacks["extra_chunks"]`` (chunks added); with ``long_words: error`` refused;
* ``split: smiles``: a byte the SMILES regex does not match becomes a one-byte word,
  counted in ``fallbacks["smiles_unmatched_bytes"]``.

The first fallback of each kind also emits one ``UserWarning``; later ones are only counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from repmix.sdk import ComponentConfig, InputError, Runtime, Tokenizer
from torch import Tensor

from repmix_learn_your_tokens.words import row_word_starts, word_starts

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]")
FALLBACK_KINDS = ("whitespace_only", "long_words", "extra_chunks", "smiles_unmatched_bytes")


def utf8_problem(item: Any) -> str | None:
    """Why ``item`` (str or bytes) has no valid UTF-8 bytes, or None."""
    if isinstance(item, (bytes, bytearray)):
        try:
            bytes(item).decode("utf-8")
        except UnicodeDecodeError as exc:
            return (f"invalid UTF-8: byte offset {exc.start} holds {bytes(item)[exc.start:exc.start + 1]!r} "
                    f"({exc.reason})")
        return None
    try:
        item.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not encodable as UTF-8: character {exc.start} is {item[exc.start]!r} ({exc.reason})"
    return None


def _hint(problem: str) -> str:
    if problem.startswith("empty"):
        return "drop empty items (a text needs at least one byte)"
    if "UTF-8" in problem:
        return "decode the input first, e.g. data.decode('utf-8', errors='replace')"
    if "max_word_bytes" in problem:
        return "raise max_word_bytes or set long_words: split (chunks of the limit, counted)"
    return "give strings, UTF-8 bytes or lists of this tokenizer's ids"


class WordBytesTokenizer(Tokenizer):
    """UTF-8 bytes (std's byte ids) with a left-to-right word rule: whitespace, punctuation or SMILES atoms."""

    citation: ClassVar[str] = (
        "Thawani, Ghanekar, Zhu, Pujara (2023). Learn Your Tokens: Word-Pooled Tokenization for Language "
        "Modeling. Findings of EMNLP 2023 (words of bytes); Schwaller et al. (2019). Molecular Transformer. "
        "ACS Central Science (SMILES regex)."
    )

    class Config(ComponentConfig):
        """Options of ``word-bytes``."""

        split: Literal["whitespace", "punctuation", "smiles"] = Field(
            "whitespace",
            description="word rule: whitespace (leading whitespace + non-whitespace run, the paper's), punctuation "
            "(also every ASCII punctuation character a word), smiles (Schwaller et al. 2019 atom regex)",
        )
        max_word_bytes: int = Field(16, ge=1, le=256, description="longest word in bytes (the encoder's canvas)")
        long_words: Literal["split", "error"] = Field(
            "split", description="a longer word: split into chunks of max_word_bytes (counted) or refuse the item"
        )
        max_length: int = Field(512, ge=2, description="truncate strings to this many ids, BOS and EOS included")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.split = config.split
        self.max_word_bytes = config.max_word_bytes
        self.max_length = config.max_length
        self.vocab_size = 256 + len(SPECIALS)
        self.pad_token_id, self.unk_token_id, self.bos_token_id, self.eos_token_id, self.mask_token_id = range(256, 261)
        self.special_ids = list(range(256, 261))
        self.fallbacks: dict[str, int] = dict.fromkeys(FALLBACK_KINDS, 0)
        self._warned: set[str] = set()

    # -- bytes and their fallbacks
    def _fallback(self, kind: str, n: int, message: str) -> None:
        self.fallbacks[kind] += n
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"learn-your-tokens word-bytes: {message} (counted in tokenizer.fallbacks[{kind!r}]; "
                          "only the first is reported)", UserWarning, stacklevel=3)

    def _long_words(self, data: bytes) -> list[int]:
        """Lengths of the words longer than the limit (the rule without the cut)."""
        starts, _ = row_word_starts(list(data), self.split, 1 << 30)
        lengths, n = [], 0
        for s in starts:
            if s and n:
                lengths.append(n)
                n = 0
            n += 1
        if n:
            lengths.append(n)
        return [k for k in lengths if k > self.max_word_bytes]

    def _problem(self, item: Any) -> str | None:
        if isinstance(item, (str, bytes, bytearray)):
            if len(item) == 0:
                return "empty string: there is no byte to predict and no word to pool"
            problem = utf8_problem(item)
            if problem is not None:
                return problem
            if self.config.long_words == "error":
                data = bytes(item) if not isinstance(item, str) else item.encode("utf-8")
                longer = self._long_words(data)
                if longer:
                    return (f"a word of {longer[0]} bytes is longer than max_word_bytes {self.max_word_bytes} "
                            "(long_words: error)")
            return None
        if isinstance(item, (list, tuple)) or (hasattr(item, "tolist") and not isinstance(item, str)):
            row = item.tolist() if hasattr(item, "tolist") else item
            if len(row) == 0:
                return "empty list of token ids: there is nothing to predict"
            bad = [x for x in row if not isinstance(x, int) or not 0 <= x < self.vocab_size]
            if bad:
                return f"token id {bad[0]!r} is not an id of this tokenizer (0-{self.vocab_size - 1})"
            return None
        return f"expected a string, UTF-8 bytes or a list of token ids, got {type(item).__name__}"

    def _bytes(self, item: str | bytes | bytearray) -> bytes:
        """UTF-8 bytes of a valid item, counting the fallbacks it takes."""
        problem = utf8_problem(item)
        if problem is not None:
            raise InputError(problem, hint="decode the input first, e.g. data.decode('utf-8', errors='replace')")
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        if data and not data.strip():
            self._fallback("whitespace_only", 1, "a whitespace-only text is one whitespace word")
        longer = self._long_words(data)
        if longer:
            if self.config.long_words == "error":
                raise InputError(f"a word of {longer[0]} bytes is longer than max_word_bytes {self.max_word_bytes}",
                                 hint="raise max_word_bytes or set long_words: split")
            chunks = sum((k - 1) // self.max_word_bytes for k in longer)
            self._fallback("long_words", len(longer),
                           f"a word of {longer[0]} bytes was split into chunks of max_word_bytes {self.max_word_bytes}")
            self.fallbacks["extra_chunks"] += chunks
        if self.split == "smiles":
            _, unmatched = row_word_starts(list(data), "smiles", self.max_word_bytes)
            if unmatched:
                self._fallback("smiles_unmatched_bytes", unmatched,
                               "a byte the SMILES regex does not match became a one-byte word")
        return data

    # -- the LM API (std.lm-tokenizer's)
    def encode_plain(self, text: str | bytes) -> list[int]:
        """Byte ids of ``text`` without special tokens and without truncation (``[]`` for an empty text)."""
        return list(self._bytes(text)) if len(text) else []

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; special ids are dropped, invalid UTF-8 replaced."""
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The byte an id stands for (b'' for special ids)."""
        return b"" if int(token_id) >= 256 else bytes([int(token_id)])

    def word_starts(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[B, T]`` bool: where a real position starts a word (a prefix rule: reads ids[:t + 1] only)."""
        return word_starts(ids, mask, self.split, self.max_word_bytes)

    def word_ids(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Word index of each position (std's convention: -1 for special ids and padding)."""
        starts = self.word_starts(ids, mask)
        special = ids >= 256
        if mask is not None:
            special = special | ~mask.bool()
        starts = starts & ~special
        words = torch.cumsum(starts.long(), dim=1) - 1
        return torch.where(special | (words < 0), torch.full_like(words, -1), words)

    # -- the tokenizer contract
    def check_item(self, item: Any) -> str | None:
        return self._problem(item)

    def sort_key(self, item: Any) -> int:
        return len(item) if isinstance(item, (str, bytes, bytearray, list, tuple)) else 0

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Strings or UTF-8 bytes (``[BOS] bytes [EOS]``, truncated) or lists of ids (as given) -> padded tensors."""
        if not items:
            raise InputError("cannot tokenize an empty batch")
        rows: list[list[int]] = []
        for i, item in enumerate(items):
            problem = self._problem(item)
            if problem is not None:
                raise InputError(f"item {i} of the batch: {problem}", hint=_hint(problem))
            if isinstance(item, (str, bytes, bytearray)):
                data = list(self._bytes(item))[: self.max_length - 2]
                rows.append([self.bos_token_id, *data, self.eos_token_id])
            else:
                row = [int(x) for x in (item.tolist() if hasattr(item, "tolist") else item)]
                if len(row) > self.max_length:
                    raise InputError(f"item {i} holds {len(row)} token ids, more than max_length {self.max_length}",
                                     hint="pack the corpus into blocks no longer than the tokenizer's max_length")
                rows.append(row)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        special = (ids >= 256) & mask
        return {"input_ids": ids, "attention_mask": mask.long(), "special_tokens_mask": special,
                "word_ids": self.word_ids(ids, mask)}
