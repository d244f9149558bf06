"""``text-corpus``: documents from a txt / jsonl / tsv file, streamed, split by document hash, optionally packed.

* **Formats** — ``txt``: one document per non-empty line; ``jsonl``: one JSON object per
  line, the ``fields`` joined by ``separator`` (SciFact: ``title`` and ``text``), ids from
  ``id_field``; ``tsv``: one column (by name with a header, or by index).
* **Streaming** — the file is read line by line as bytes and never held whole in memory;
  packed token blocks are kept as one int32 array (4 bytes per token).
* **Held-out split** — a document goes to ``test`` when the first 8 hex digits of the
  SHA-256 of its id (or its text when it has none), as a fraction of 2^32, are below
  ``holdout``; otherwise to ``train``. The split never depends on file order or on the
  other documents, so adding documents moves none.
* **Packing** — with ``block_size``, documents are tokenized by the tower's tokenizer
  (injected by the engine), each followed by the end-of-text token (and preceded by the
  beginning one, when the tokenizer has both), concatenated and cut into blocks of
  ``block_size`` ids (the last, shorter block is dropped, as transformers' ``run_clm`` does).
  With ``pack: false`` each document is one example and one longer than ``block_size``
  tokens is an error.

Bad input is one :class:`~repmix.sdk.InputError`: a missing or empty file, bytes that are
not UTF-8 (with the byte offset), malformed JSON (with the line), a missing field or
column, a document longer than the block (``pack: false``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator
from repmix.sdk import ComponentConfig, ConfigError, Dataset, Examples, InputError, Runtime


class TokenBlocks(Sequence):  # type: ignore[type-arg]
    """Packed blocks of token ids over one int32 array; item ``i`` is a list of ints."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.array[k].tolist() for k in range(*i.indices(len(self)))]
        return self.array[i].tolist()


def held_out(key: str, holdout: float) -> bool:
    """True when the document keyed ``key`` belongs to the held-out (``test``) split."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < holdout


class TextCorpus(Dataset):
    """Documents of a text file for language modelling (see the module docs)."""

    citation: ClassVar[str] = "repmix std: plain-text corpora for language modelling."

    class Config(ComponentConfig):
        """Options of ``text-corpus``."""

        path: str = Field(..., description="txt, jsonl or tsv file (relative to the working directory)")
        format: Literal["auto", "txt", "jsonl", "tsv"] = Field("auto", description="file format (auto: from the suffix)")
        fields: list[str] = Field(default_factory=lambda: ["title", "text"], description="jsonl: fields joined into the document")
        separator: str = Field("\n", description="jsonl: text between the fields")
        id_field: str | None = Field("_id", description="jsonl: field with the document id (hashed for the split)")
        column: str | int = Field(0, description="tsv: column name (with header) or 0-based index")
        header: bool = Field(True, description="tsv: the first line names the columns")
        tower: str = Field("text", description="the column name of the examples (the tower that reads them)")
        split: Literal["train", "test", "all"] = Field("train", description="which part of the hash split to load")
        holdout: float = Field(0.1, ge=0, lt=1, description="fraction of documents in the test split (by id hash)")
        block_size: int | None = Field(None, ge=2, description="pack into blocks of this many token ids (needs the tower's tokenizer)")
        pack: bool = Field(True, description="with block_size: concatenate documents and cut (true) or one document per block (false)")
        limit: int | None = Field(None, ge=1, description="read at most this many documents of the split")

        @model_validator(mode="after")
        def _check(self) -> TextCorpus.Config:
            if not self.fields:
                raise ValueError("fields must name at least one field")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.tokenizer = runtime.tokenizers.get(config.tower)

    # ------------------------------------------------------------------ reading
    def _format(self, path: Path) -> str:
        if self.config.format != "auto":
            return self.config.format
        suffix = path.suffix.lower()
        return {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".txt": "txt", ".text": "txt"}.get(suffix, "txt")

    def documents(self, split: str | None = None) -> Iterator[tuple[str, str]]:
        """Stream ``(key, text)`` of the documents in ``split`` (default: the configured one)."""
        c = self.config
        split = split or c.split
        if split not in ("train", "test", "all"):
            raise InputError(f"text-corpus has splits train, test and all, not {split!r}")
        path = Path(c.path)
        if not path.is_file():
            raise InputError(f"corpus file {c.path!r} does not exist" + (" (it is a directory)" if path.is_dir() else ""))
        if path.stat().st_size == 0:
            raise InputError(f"corpus file {c.path!r} is empty", hint="give a file with at least one document")
        fmt = self._format(path)
        col_index: int | None = c.column if isinstance(c.column, int) else None
        offset, n_docs, n_yield = 0, 0, 0
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                start = offset
                offset += len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"corpus file {c.path!r} is not UTF-8: byte offset {start + exc.start} (line {lineno}) "
                        f"holds {raw[exc.start:exc.start + 1]!r}",
                        hint="convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                    ) from None
                line = line.rstrip("\r\n")
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                if fmt == "tsv" and lineno == 1 and c.header:
                    names = line.split("\t")
                    if isinstance(c.column, str):
                        if c.column not in names:
                            raise InputError(f"{c.path!r}: no column {c.column!r} in the header; columns: {', '.join(names)}")
                        col_index = names.index(c.column)
                    continue
                if not line.strip():
                    continue
                key, text = self._parse(fmt, line, lineno, col_index)
                if not text.strip():
                    continue
                n_docs += 1
                if split != "all" and held_out(key, c.holdout) != (split == "test"):
                    continue
                yield key, text
                n_yield += 1
                if c.limit is not None and n_yield >= c.limit:
                    return
        if n_docs == 0:
            raise InputError(f"corpus file {c.path!r} holds no documents (only blank lines or a header)")

    def _parse(self, fmt: str, line: str, lineno: int, col_index: int | None) -> tuple[str, str]:
        c = self.config
        if fmt == "jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{c.path!r} line {lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{c.path!r} line {lineno}: expected a JSON object")
            present = [f for f in c.fields if isinstance(obj.get(f), str)]
            if not present:
                raise InputError(f"{c.path!r} line {lineno}: none of the fields {c.fields} holds a string",
                                 hint=f"fields present: {', '.join(obj)}")
            text = c.separator.join(obj[f] for f in present if obj[f])
            key = str(obj[c.id_field]) if c.id_field and c.id_field in obj else text
            return key, text
        if fmt == "tsv":
            cells = line.split("\t")
            idx = col_index if col_index is not None else 0
            if idx >= len(cells):
                raise InputError(f"{c.path!r} line {lineno}: has {len(cells)} columns, column {idx} wanted")
            return cells[idx], cells[idx]
        return line, line

    # ---------------------------------------------------------------- packing
    def load(self, split: str | None = None) -> Examples:
        c = self.config
        if c.block_size is None:
            keys, texts = [], []
            for key, text in self.documents(split):
                keys.append(key)
                texts.append(text)
            return Examples({c.tower: texts}, ids=keys)
        tok = self.tokenizer
        if tok is None or not callable(getattr(tok, "encode_plain", None)):
            raise ConfigError(
                f"text-corpus with block_size packs token ids, so it needs the tokenizer of tower {c.tower!r}",
                path="data.block_size",
                hint="repmix train and evaluate provide it; the tower needs an lm-tokenizer "
                "(or drop block_size to get documents as text)",
            )
        limit = getattr(tok, "max_length", None)
        if isinstance(limit, int) and c.block_size > limit:
            raise ConfigError(f"block_size {c.block_size} exceeds the tokenizer's max_length {limit}",
                              path="data.block_size", hint=f"use a block_size of at most {limit}")
        bos, eos = getattr(tok, "bos_token_id", None), getattr(tok, "eos_token_id", None)
        chunks: list[np.ndarray] = []
        blocks: list[list[int]] = []
        buffer: list[int] = []
        for n, (key, text) in enumerate(self.documents(split), start=1):
            ids = tok.encode_plain(text)
            doc = ([bos] if bos is not None and eos is not None and bos != eos else []) + ids + ([eos] if eos is not None else [])
            if not c.pack:
                if len(doc) > c.block_size:
                    raise InputError(
                        f"{c.path!r}: document {n} ({key[:40]!r}) is {len(doc)} tokens long, longer than "
                        f"block_size {c.block_size}",
                        hint="set pack: true to cut documents into blocks, or raise block_size",
                    )
                blocks.append(doc)
                continue
            buffer.extend(doc)
            full = len(buffer) // c.block_size
            if full:
                arr = np.asarray(buffer[: full * c.block_size], dtype=np.int32).reshape(full, c.block_size)
                chunks.append(arr)
                buffer = buffer[full * c.block_size :]
        if not c.pack:
            return Examples({c.tower: blocks})
        if not chunks:
            raise InputError(
                f"{c.path!r}: the {split or c.split} split holds fewer than block_size ({c.block_size}) tokens",
                hint="lower block_size or use more documents",
            )
        return Examples({c.tower: TokenBlocks(np.concatenate(chunks))})  # type: ignore[dict-item]
