"""``hat.hat-tokenizer``: UTF-8 bytes for a HAT model, with the HAT splitting rule attached.

Ids are the layout of ``std.lm-tokenizer`` with ``algorithm: bytes``: bytes 0–255, then
``[PAD] [UNK] [BOS] [EOS] [MASK]`` (256–260); strings become ``[BOS] bytes [EOS]``, cut to
``max_length``. It offers the LM API std's evaluators and ``text-corpus`` packing use
(``encode_plain``, ``decode``, ``token_bytes``, ``bos/eos/pad_token_id``, ``max_length``),
and the splitting rule (``words``, ``max_word_size``) that the ``hat.hat`` encoder reads from
it, so the rule is configured once. Batches also carry ``word_ids`` (the HAT word of each
byte, -1 for padding) and ``hat_known`` (see :class:`repmix_hat.splitter.Segmentation`).

Bad input, each a documented fallback (counted in :attr:`HATTokenizer.counts`) or one message:

* an empty string: encoded as ``[BOS] [EOS]`` (two special-token words, no text), counted
  as ``empty``;
* whitespace-only text: whitespace is text; it becomes whitespace words (``"   "`` one word,
  ``"\\n\\n"`` two), counted as ``whitespace_only``;
* invalid UTF-8 given as ``bytes``: with ``invalid_utf8: keep`` (default) each invalid byte
  is kept as a byte id and becomes a word of its own, counted as ``invalid_bytes``; with
  ``invalid_utf8: error`` an :class:`InputError` names the item, the byte offset and value;
* a word longer than ``max_word_size`` bytes: cut into pieces of at most that many bytes
  (the HAT rule), counted as ``long_word_cuts``;
* a SMILES character the atom regex does not cover: a word of its own, counted as
  ``smiles_unmatched``;
* anything that is not a string, bytes or a list of ids: :class:`InputError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from repmix.sdk import ComponentConfig, InputError, Runtime, Tokenizer
from torch import Tensor

from repmix_hat.splitter import Segmenter, smiles_tokens, split, split_with_limit

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]")
HAT_CITATION = (
    "Neitemeier et al. (2025). Hierarchical Autoregressive Transformers: Combining Byte- and Word-Level "
    "Processing for Robust, Adaptable Language Models. ICLR 2025. Splitter: "
    "https://github.com/Aleph-Alpha-Research/hat-splitter"
)
SMILES_CITATION = "Schwaller et al. (2019). Molecular Transformer. ACS Central Science (SMILES atom regex)."


class HATTokenizer(Tokenizer):
    """UTF-8 bytes + special tokens, and the HAT word splitting rule (``text`` or ``smiles``)."""

    citation: ClassVar[str] = f"{HAT_CITATION}; {SMILES_CITATION}"

    class Config(ComponentConfig):
        """Options of ``hat-tokenizer``."""

        words: Literal["text", "smiles"] = Field(
            "text", description="splitting rule: text (the HAT splitter) or smiles (one word per SMILES atom token)")
        max_word_size: int = Field(
            64, ge=4, le=4096, description="longest word in bytes; longer words are cut (at least 4: one UTF-8 character)")
        max_length: int = Field(512, ge=2, description="strings are cut to this many ids, [BOS] and [EOS] included")
        invalid_utf8: Literal["keep", "error"] = Field(
            "keep", description="bytes items that are not UTF-8: keep the raw bytes (each invalid byte a word) or error")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.max_length = config.max_length
        self.vocab_size = 256 + len(SPECIALS)
        self.pad_token_id, self.unk_token_id, self.bos_token_id, self.eos_token_id, self.mask_token_id = range(256, 261)
        self.special_ids = list(range(256, 261))
        self.segmenter = Segmenter(config.words, config.max_word_size)
        #: fallbacks taken so far (see the module docs); :meth:`reset_counts` clears them.
        self.counts: Counter[str] = Counter()

    # -- the splitting rule
    def split(self, text: str) -> list[str]:
        """Words of ``text`` under this tokenizer's rule (no length limit)."""
        return split(text, self.config.words)

    def split_with_limit(self, text: str, limit: int | None = None) -> list[bytes]:
        """Words of ``text`` as bytes, cut to at most ``limit`` (default ``max_word_size``) bytes."""
        return split_with_limit(text, limit or self.config.max_word_size, self.config.words)

    def reset_counts(self) -> None:
        self.counts.clear()

    # -- the LM API
    def _bytes_of(self, item: str | bytes, index: int = 0) -> bytes:
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            if not item:
                self.counts["empty"] += 1
            elif not item.strip():
                self.counts["whitespace_only"] += 1
            if self.config.words == "smiles":
                self.counts["smiles_unmatched"] += sum(1 for _, other in smiles_tokens(item) if other)
            return data
        data = bytes(item)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.config.invalid_utf8 == "error":
                raise InputError(
                    f"item {index} is not valid UTF-8: byte offset {exc.start} holds {data[exc.start:exc.start + 1]!r}",
                    hint="decode the text first, or set invalid_utf8: keep to model the raw bytes",
                ) from None
        if not data:
            self.counts["empty"] += 1
        return data

    def encode_plain(self, text: str | bytes) -> list[int]:
        """Byte ids of ``text`` without special tokens and without truncation."""
        return list(self._bytes_of(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens dropped; invalid UTF-8 shown as U+FFFD)."""
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The byte an id stands for (b'' for special tokens)."""
        return bytes([token_id]) if 0 <= token_id < 256 else b""

    def check_item(self, item: Any) -> str | None:
        if isinstance(item, (str, bytes, bytearray, list, tuple)) or hasattr(item, "tolist"):
            return None
        return f"expected a string, bytes or a list of ids, got {type(item).__name__}"

    def sort_key(self, item: Any) -> int:
        try:
            return len(item)
        except TypeError:
            return 0

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Strings / bytes (``[BOS] bytes [EOS]``, cut to ``max_length``) or lists of ids (as given)."""
        if not len(items):
            raise InputError("cannot tokenize an empty batch")
        rows: list[list[int]] = []
        for i, item in enumerate(items):
            if isinstance(item, (str, bytes, bytearray)):
                data = self._bytes_of(item, i)
                rows.append([self.bos_token_id, *data[: self.max_length - 2], self.eos_token_id])
            elif isinstance(item, (list, tuple)) or hasattr(item, "tolist"):
                row = [int(x) for x in (item.tolist() if hasattr(item, "tolist") else item)]
                if len(row) > self.max_length:
                    raise InputError(f"item {i} holds {len(row)} ids, more than max_length {self.max_length}",
                                     hint="pack the corpus into blocks no longer than the tokenizer's max_length")
                if any(not 0 <= x < self.vocab_size for x in row):
                    raise InputError(f"item {i} holds ids outside 0..{self.vocab_size - 1}")
                rows.append(row)
            else:
                raise InputError(f"item {i}: {self.check_item(item)}")
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        words = torch.full((len(rows), width), -1, dtype=torch.long)
        known = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
            seg = self.segmenter.segment(r)
            words[i, : len(r)] = torch.tensor(seg.words, dtype=torch.long)
            known[i, : len(r)] = torch.tensor(seg.known, dtype=torch.long)
            self.counts["invalid_bytes"] += seg.counts["invalid_bytes"]
            self.counts["long_word_cuts"] += seg.counts["long_word_cuts"]
        special = (ids >= 256) & mask
        # word_ids as std's tokenizers give them (-1 for special tokens and padding), for masking schemes;
        # hat_words / hat_known: the HAT segmentation the hat encoder uses (special tokens are words there)
        word_ids = torch.full_like(words, -1)
        for i, r in enumerate(rows):
            dense: dict[int, int] = {}
            for t, (x, w) in enumerate(zip(r, words[i, : len(r)].tolist())):
                if x < 256:
                    word_ids[i, t] = dense.setdefault(w, len(dense))
        return {"input_ids": ids, "attention_mask": mask.long(), "special_tokens_mask": special,
                "word_ids": word_ids, "hat_words": words, "hat_known": known}
