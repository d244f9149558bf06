"""The source model's WordPiece vocabulary, and the decomposition of any token into it.

ZeTT embeds a target token from its *surface form decomposed by the source tokenizer*
(``zett.utils.get_surface_form_matrix``: the source tokenizer's model applied to the token's
string, truncated to ``hn_surface_maxlen`` ids; a special token maps to its own id). The
official code works on byte-level strings; for a BERT source (all-MiniLM-L6-v2) the token
strings follow WordPiece's convention instead:

* ``##xyz`` is a word-internal token (it continues the previous one), anything else starts a
  word; special tokens (``[CLS]``, ...) are themselves;
* the text is normalised as the source tokenizer normalises (BERT: lower case, accents
  stripped), then split by WordPiece's greedy longest-match-first rule, continuation pieces
  with ``##`` (the first piece too when the token is word-internal), exactly as BERT would
  split that word (or word tail);
* a string WordPiece cannot cover becomes ``[UNK]``, as in BERT, and is counted
  (:attr:`SourceVocabulary.unknown`); so is a decomposition cut to ``maxlen`` ids
  (:attr:`SourceVocabulary.truncated`).

:func:`vocabulary_fingerprint` names a vocabulary by its tokens in id order; a hypernetwork
checkpoint records its source's, and every consumer (the transferred encoder here, the
dynamic-tokenization plugin) refuses a checkpoint trained for another vocabulary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from repmix.sdk import ConfigError


def vocabulary_fingerprint(tokens: Sequence[str]) -> str:
    """sha256 of the tokens in id order, one per line (the first 16 hex digits)."""
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()[:16]


def load_backend(model_dir: Path, what: str) -> Any:
    """The ``tokenizers.Tokenizer`` of a model folder (``tokenizer.json``, else via transformers)."""
    file = model_dir / "tokenizer.json"
    try:
        if file.is_file():
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(file))
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(model_dir)).backend_tokenizer
    except Exception as exc:  # noqa: BLE001 - any failure is one message naming the folder
        raise ConfigError(f"cannot load the {what} tokenizer from {str(model_dir)!r}: {exc}") from None


class SourceVocabulary:
    """A WordPiece source vocabulary: token strings <-> ids, specials, and :meth:`decompose`."""

    def __init__(self, backend: Any, *, name: str = "the source model") -> None:
        model = backend.model
        kind = type(model).__name__
        if kind != "WordPiece":
            raise ConfigError(
                f"{name} uses a {kind} tokenizer; zett decomposes tokens into WordPiece (BERT-family) "
                "source vocabularies only",
                hint="use a BERT-family source model such as all-MiniLM-L6-v2",
            )
        vocab: dict[str, int] = dict(backend.get_vocab(with_added_tokens=True))
        self.size = max(vocab.values()) + 1
        tokens = [""] * self.size
        for tok, i in vocab.items():
            tokens[i] = tok
        self.tokens: list[str] = tokens
        self.vocab = vocab
        self.prefix: str = model.continuing_subword_prefix or "##"
        self.max_chars: int = int(getattr(model, "max_input_chars_per_word", 100) or 100)
        self.unk_token: str = model.unk_token
        if self.unk_token not in vocab:
            raise ConfigError(f"{name}'s tokenizer has no unknown token {self.unk_token!r} in its vocabulary")
        self.unk_id = vocab[self.unk_token]
        self.specials: dict[str, int] = {
            t.content: i for i, t in backend.get_added_tokens_decoder().items() if t.special
        }
        self.pad_id = self.specials.get("[PAD]", 0)
        self.normalizer = backend.normalizer
        self.fingerprint = vocabulary_fingerprint(tokens)
        self.unknown = 0
        self.truncated = 0
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_model(cls, model_dir: Path, *, name: str = "the source model") -> SourceVocabulary:
        """The vocabulary of a Hugging Face model folder."""
        return cls(load_backend(model_dir, "source"), name=name)

    def normalize(self, text: str) -> str:
        """The source tokenizer's normalisation (BERT: clean, lower case, strip accents)."""
        return self.normalizer.normalize_str(text) if self.normalizer is not None else text

    def is_continuation(self, token: str) -> bool:
        """True for a word-internal token (``##xyz``)."""
        return token.startswith(self.prefix) and len(token) > len(self.prefix)

    def _wordpiece(self, text: str, continuation: bool) -> list[int] | None:
        """BERT's greedy longest-match-first split of one word (or word tail); ``None`` when it fails."""
        if len(text) > self.max_chars:
            return None
        ids: list[int] = []
        start = 0
        while start < len(text):
            end = len(text)
            found = None
            while start < end:
                piece = text[start:end]
                if start > 0 or continuation:
                    piece = self.prefix + piece
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return None
            ids.append(found)
            start = end
        return ids

    def decompose_full(self, token: str) -> list[int]:
        """All source ids of ``token``'s surface form (not truncated); ``[UNK]`` when WordPiece fails."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        if token in self.specials:
            ids = [self.specials[token]]
        else:
            continuation = self.is_continuation(token)
            text = self.normalize(token[len(self.prefix):] if continuation else token)
            ids = []
            ok = bool(text) and not text.isspace()
            for k, word in enumerate(text.split() if ok else ()):
                # whitespace never occurs inside a WordPiece token; split like BERT if a string holds some
                part = self._wordpiece(word, continuation and k == 0)
                if part is None:
                    ok = False
                    break
                ids.extend(part)
            if not ok or not ids:
                ids = [self.unk_id]
        self._cache[token] = ids
        return ids

    def decompose(self, token: str, maxlen: int) -> list[int]:
        """Source ids of ``token`` cut to ``maxlen``; counts ``[UNK]`` decompositions and truncations."""
        ids = self.decompose_full(token)
        if ids == [self.unk_id] and token != self.unk_token:
            self.unknown += 1
        if len(ids) > maxlen:
            self.truncated += 1
            ids = ids[:maxlen]
        return ids

    def decompose_all(self, tokens: Iterable[str], maxlen: int) -> list[list[int]]:
        """:meth:`decompose` of every token."""
        return [self.decompose(t, maxlen) for t in tokens]
