"""repmix components of dynamic tokenization: the batch-level BPE tokenizer, the encoder, token counts.

* ``dynamic-tokenization.dynamic-bpe`` (tokenizer): tokenizes a batch with the base tokenizer,
  then merges the batch's most frequent valid adjacent pairs (:mod:`.merging`, within pretokens:
  :mod:`.boundaries`). A merged token whose string is in the base vocabulary gets that id (its
  original embedding); every other merged token gets a batch-local id ``V + j`` (``V`` = base
  vocabulary size) and travels as a string in :attr:`DynamicBatch.new_tokens`, with the base ids
  it was merged from. The base is a model's tokenizer (``model:``) or a nested tokenizer block
  (``base:``, e.g. std.lm-tokenizer trained from the corpus). The LM API (``encode_plain``,
  ``decode``, ``bos/eos_token_id``) merges each document on its own and numbers merged tokens in a
  registry (``V + r``); ``vocabulary_from`` fixes that registry to the frequent merged tokens of a
  corpus (the decoder vocabulary W) and splits every other merged token back into base tokens.
* ``dynamic-tokenization.dynamic-transformer`` (encoder): the base transformer (e.g.
  all-MiniLM-L6-v2) on the merged sequence, the embeddings of new tokens predicted by a ZeTT
  hypernetwork from their decomposition into the base vocabulary (a nested
  ``{type: zett.hypernetwork, ...}`` block of the ``zett`` plugin, reached by its registered
  name), or, as the FVT-style baseline the spec names, the mean of their pieces' embeddings.
* ``dynamic-tokenization.token-counts`` (evaluator): tokens per text before and after merging,
  with the evaluation's own batching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Evaluator,
    Examples,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    Tokenizer,
    resolve_model_dir,
)
from repmix.sdk.hf import load_hf_config, load_hf_model, model_files, validate_model_dir
from torch import Tensor

from .boundaries import metaspace_rules, wordpiece_rules
from .merging import Merge, dynamic_merges

log = logging.getLogger("repmix_dynamic_tokenization")

#: The base model when neither ``model:`` nor ``base:`` is given.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

CITATION = (
    "Feher, Vulić and Minixhofer (2025). Retrofitting (Large) Language Models with Dynamic Tokenization. "
    "ACL 2025. Official code: github.com/DariusFeher/dynamic-tokenization."
)


def cache_dir() -> Path:
    """Where built vocabularies are kept: ``$REPMIX_CACHE`` or ``~/.cache/repmix`` (as std's trained tokenizers)."""
    return Path(os.environ.get("REPMIX_CACHE") or Path.home() / ".cache" / "repmix")


def vocabulary_fingerprint(tokens: Sequence[str]) -> str:
    """sha256 of the tokens in id order, one per line, first 16 hex digits (the zett plugin's contract)."""
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()[:16]


def _token_strings(backend: Any) -> list[str]:
    vocab = backend.get_vocab(with_added_tokens=True)
    out = [""] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        out[i] = tok
    return out


def tokenizer_source(value: str) -> Path:
    """The ``tokenizer.json`` (or model folder) a ``model`` value names, or a ConfigError."""
    p = Path(value).expanduser()
    if p.is_file():
        return p
    if p.is_dir() and (p / "tokenizer.json").is_file() and not (p / "config.json").is_file():
        return p / "tokenizer.json"
    return resolve_model_dir(value)


def load_base(value: str) -> Any:
    """The base ``tokenizers.Tokenizer`` of a model name/folder or a tokenizer.json file."""
    source = tokenizer_source(value)
    try:
        if source.is_file():
            from tokenizers import Tokenizer as HFTokenizer

            return HFTokenizer.from_file(str(source))
        if (source / "tokenizer.json").is_file():
            from tokenizers import Tokenizer as HFTokenizer

            return HFTokenizer.from_file(str(source / "tokenizer.json"))
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(source)).backend_tokenizer
    except Exception as exc:  # noqa: BLE001 - one message naming the file
        raise ConfigError(f"cannot load a tokenizer from {str(source)!r}: {exc}", found=value) from None


def backend_of(nested: Any, block: dict[str, Any] | None) -> Any:
    """A private copy of the Hugging Face ``tokenizers.Tokenizer`` behind a built tokenizer component.

    Reads ``hf.backend_tokenizer`` (std.lm-tokenizer and other transformers-backed tokenizers),
    a ``backend`` attribute, or the ``tokenizer.json`` its ``saved_files`` name; anything else (e.g.
    std.lm-tokenizer with ``algorithm: bytes``, which has no subwords to merge) is a ConfigError.
    """
    from tokenizers import Tokenizer as HFTokenizer

    name = (block or {}).get("type", type(nested).__name__)
    for candidate in (getattr(getattr(nested, "hf", None), "backend_tokenizer", None), getattr(nested, "backend", None)):
        if isinstance(candidate, HFTokenizer):
            return HFTokenizer.from_str(candidate.to_str())
    files_of = getattr(nested, "saved_files", None)
    for value in (files_of() if callable(files_of) else {}).values():
        for f in value if isinstance(value, (list, tuple)) else [value]:
            if Path(f).name == "tokenizer.json" and Path(f).is_file():
                return load_base(str(f))
    raise ConfigError(
        f"the base tokenizer {name!r} is not a subword tokenizer dynamic-bpe can merge (it exposes no Hugging Face "
        "tokenizers model)",
        hint="use e.g. {type: std.lm-tokenizer, algorithm: bpe, vocab_size: 4096, train_on: {...}} "
        "(bpe, unigram, byte-bpe, wordpiece or pretrained; not bytes)",
        found=name,
    )


def _special_id(nested: Any, attr: str, vocab: dict[str, int], names: Sequence[str]) -> int | None:
    """A special token id: the base tokenizer component's own, else the first of ``names`` in the vocabulary."""
    value = getattr(nested, attr, None) if nested is not None else None
    if isinstance(value, int):
        return value
    return next((vocab[n] for n in names if n in vocab), None)


def _check_model_value(value: str) -> str:
    try:
        tokenizer_source(value)
    except ConfigError as err:
        raise ValueError(err.message + (f". {err.hint}" if err.hint else "")) from None
    return value


@dataclass
class DynamicBatch:
    """A dynamically tokenized batch.

    ``input_ids`` [B, T'] hold base ids, or ``V + j`` for the j-th entry of ``new_tokens`` (the
    merged tokens outside the base vocabulary, as strings in the base tokenizer's convention,
    with ``new_parts``: the base ids each was merged from). ``tokens`` are the token strings per
    item, ``base_lengths`` the base token counts per item (special tokens included), ``merges``
    the merges applied, in order.
    """

    input_ids: Tensor
    attention_mask: Tensor
    token_type_ids: Tensor
    new_tokens: list[str]
    new_parts: list[tuple[int, ...]]
    tokens: list[list[str]]
    parts: list[list[tuple[int, ...]]]
    base_lengths: list[int]
    merges: list[Merge] = field(default_factory=list)

    def to(self, device: torch.device | str) -> DynamicBatch:
        """The batch with its tensors on ``device``."""
        return DynamicBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.token_type_ids.to(device),
            self.new_tokens, self.new_parts, self.tokens, self.parts, self.base_lengths, self.merges,
        )


class DynamicBPE(Tokenizer):
    """Batch-level BPE merging on top of a base tokenizer (dynamic tokenization)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dynamic-tokenization.dynamic-bpe``."""

        model: str | None = Field(
            None,
            description="the base tokenizer: the packaged 'all-MiniLM-L6-v2' (the default when base: is not given), "
            "a model folder, or a tokenizer.json",
        )
        base: dict[str, Any] | None = Field(
            None,
            description="instead of model: a nested tokenizer block whose Hugging Face tokenizer is the base, e.g. "
            "{type: std.lm-tokenizer, algorithm: bpe, vocab_size: 4096, train_on: {...}} (trained from the corpus)",
        )
        max_merges: int | None = Field(
            None, ge=0, description="merges per batch (max_nr_merges); null: until no valid pair is left (words)"
        )
        boundary: Literal["pretokens", "word"] = Field(
            "pretokens", description="merged tokens stay within one pretoken, or within one whitespace-free word"
        )
        max_length: int = Field(256, ge=2, description="truncate the base tokenization (special tokens included)")
        vocabulary_from: dict[str, Any] | None = Field(
            None,
            description="a dataset block (e.g. the training documents): its merged tokens seen at least "
            "vocabulary_min_count times form a fixed vocabulary W; every other merged token is split back into its "
            "base tokens (the paper's precomputed decoder vocabulary). null: no fixed vocabulary (batch vocabulary)",
        )
        vocabulary_min_count: int = Field(2, ge=1, description="occurrences a merged token needs to enter W")
        vocabulary_file: str | None = Field(
            None, description="a fixed vocabulary (vocabulary.json) to load instead of building it (a saved model sets it)"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str | None) -> str | None:
            return None if value is None else _check_model_value(value)

        @model_validator(mode="after")
        def _one_source(self) -> DynamicBPE.Config:
            if self.base is not None:
                if self.model is not None:
                    raise ValueError("give the base tokenizer once: model: (a name, folder or tokenizer.json) "
                                     "or base: (a tokenizer block), not both")
                if not isinstance(self.base.get("type"), str):
                    raise ValueError("base: needs a type, e.g. {type: std.lm-tokenizer, algorithm: bpe, ...}")
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:  # type: ignore[override]
        """The ``base:`` tokenizer block (e.g. std.lm-tokenizer trained from the corpus) and the
        ``vocabulary_from:`` dataset block (unless ``vocabulary_file`` is given), built first."""
        nested: dict[str, tuple[str, dict[str, Any]]] = {}
        if config.base is not None:
            nested["base"] = ("tokenizer", dict(config.base))
        if config.vocabulary_from is not None and config.vocabulary_file is None:
            nested["vocabulary_from"] = ("dataset", dict(config.vocabulary_from))
        return nested

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        nested = runtime.nested.get("base") if config.base is not None else None
        self.model_name = config.model or DEFAULT_MODEL
        backend = backend_of(nested, config.base) if config.base is not None else load_base(self.model_name)
        source = f"base tokenizer {config.base.get('type')!r}" if config.base is not None else repr(self.model_name)
        kind = type(backend.model).__name__
        self.token_strings = _token_strings(backend)
        self.base_vocab_size = len(self.token_strings)
        self.vocab = {t: i for i, t in enumerate(self.token_strings)}
        self.special_tokens = {t.content for t in backend.get_added_tokens_decoder().values() if t.special}
        if kind == "WordPiece":
            self.family = "wordpiece"
            self.is_valid, self.concat = wordpiece_rules(self.special_tokens, backend.model.continuing_subword_prefix)
        elif kind in ("BPE", "Unigram") and getattr(backend.model, "continuing_subword_prefix", None) in (None, ""):
            self.family = "metaspace"
            self.is_valid, self.concat = metaspace_rules(self.special_tokens, config.boundary)
        else:
            raise ConfigError(
                f"the base tokenizer of {source} is a {kind} model with word-internal marks "
                f"{getattr(backend.model, 'continuing_subword_prefix', None)!r}; dynamic-bpe handles WordPiece "
                "(BERT) and SentencePiece/byte-level BPE or Unigram tokenizers",
                found=source,
            )
        from tokenizers import Tokenizer as HFTokenizer

        # encode_plain reads whole documents: a copy without truncation
        self.plain_backend = HFTokenizer.from_str(backend.to_str())
        self.plain_backend.no_truncation()
        self.plain_backend.no_padding()
        backend.enable_truncation(config.max_length)
        backend.no_padding()
        self.backend = backend
        self.max_length = config.max_length
        self.fingerprint = vocabulary_fingerprint(self.token_strings)
        pad = next((t for t in ("[PAD]", "<pad>", "</s>", "<|endoftext|>") if t in self.vocab), None)
        self.pad_id = self.vocab[pad] if pad is not None else 0
        self.bos_token_id = _special_id(nested, "bos_token_id", self.vocab, ("[BOS]", "<s>", "<|endoftext|>", "[CLS]"))
        self.eos_token_id = _special_id(nested, "eos_token_id", self.vocab, ("[EOS]", "</s>", "<|endoftext|>", "[SEP]"))
        self.mask_token_id = _special_id(nested, "mask_token_id", self.vocab, ("[MASK]", "<mask>"))
        self.special_ids = sorted(self.vocab[t] for t in self.special_tokens if t in self.vocab)
        #: merged tokens met by encode_plain (packed corpora, scored documents): string -> registry index r;
        #: their id is V + r, and a batch maps them to its own batch-local ids (see __call__)
        self.registry: dict[str, int] = {}
        self.registry_tokens: list[str] = []
        self.registry_parts: list[tuple[int, ...]] = []
        self.counts = {"texts": 0, "empty_texts": 0, "truncated_texts": 0, "id_rows": 0, "base_tokens": 0,
                       "dynamic_tokens": 0, "merges": 0, "batches": 0, "split_tokens": 0}
        #: a fixed vocabulary W (vocabulary_from / vocabulary_file): the registry, frozen
        self.fixed_vocabulary = False
        self._vocabulary_path: Path | None = None
        if config.vocabulary_file is not None:
            self._load_vocabulary(Path(config.vocabulary_file))
        elif config.vocabulary_from is not None:
            self._load_vocabulary(self._build_vocabulary(runtime.nested.get("vocabulary_from")))

    # -- the fixed vocabulary W
    def _build_vocabulary(self, dataset: Any) -> Path:
        """Count the merged tokens of the documents of ``vocabulary_from`` (cached by content); the vocabulary.json."""
        if dataset is None or not callable(getattr(dataset, "load", None)):
            raise ConfigError("vocabulary_from must be a dataset block, e.g. {type: std.text-corpus, path: ..., "
                              "split: train}")
        examples = dataset.load(None)
        texts = [t for t in next(iter(examples.columns.values()), []) if isinstance(t, str)]
        if not texts:
            raise InputError("the vocabulary_from data holds no text documents to build the vocabulary from")
        c = self.config
        h = hashlib.sha256()
        h.update(json.dumps([self.fingerprint, c.max_merges, c.boundary, c.vocabulary_min_count]).encode())
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        path = cache_dir() / "dynamic-tokenization" / "vocabularies" / h.hexdigest()[:20] / "vocabulary.json"
        if path.is_file():
            return path
        counts: dict[str, int] = {}
        parts_of: dict[str, tuple[int, ...]] = {}
        for text in texts:
            enc = self.plain_backend.encode(text, add_special_tokens=False)
            if not enc.ids:
                continue
            result = dynamic_merges([enc.tokens], [[(i,) for i in enc.ids]], is_valid=self.is_valid,
                                    concat=self.concat, max_merges=c.max_merges)
            for tok, parts in zip(result.tokens[0], result.parts[0], strict=True):
                if len(parts) > 1 and tok not in self.vocab:
                    counts[tok] = counts.get(tok, 0) + 1
                    parts_of.setdefault(tok, parts)
        kept = sorted((t for t, n in counts.items() if n >= c.vocabulary_min_count), key=lambda t: (-counts[t], t))
        data = {"fingerprint": self.fingerprint, "max_merges": c.max_merges, "boundary": c.boundary,
                "min_count": c.vocabulary_min_count, "documents": len(texts), "tokens": kept,
                "parts": [list(parts_of[t]) for t in kept], "counts": [counts[t] for t in kept]}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".vocabulary.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def _load_vocabulary(self, path: Path) -> None:
        """Load W into the registry and freeze it (ids ``V + index``); ConfigError for a missing or foreign file."""
        if not path.is_file():
            raise ConfigError(f"vocabulary file {str(path)!r} does not exist", found=str(path))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            tokens, parts = list(data["tokens"]), [tuple(int(i) for i in p) for p in data["parts"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{str(path)!r} is not a dynamic-tokenization vocabulary: {exc}", found=str(path)) from None
        if data.get("fingerprint") != self.fingerprint or any(i >= self.base_vocab_size for p in parts for i in p):
            raise ConfigError(
                f"the vocabulary {str(path)!r} was built over another base tokenizer (fingerprint "
                f"{data.get('fingerprint')}, this one {self.fingerprint})", found=str(path),
            )
        self.registry = {t: r for r, t in enumerate(tokens)}
        self.registry_tokens, self.registry_parts = tokens, parts
        self.fixed_vocabulary = True
        self._vocabulary_path = path

    @property
    def vocab_size(self) -> int:
        """Base vocabulary size (new tokens get batch-local ids beyond it)."""
        return self.base_vocab_size

    @property
    def pad_token_id(self) -> int:
        """Id used for padding."""
        return self.pad_id

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The base tokenizer's files (a ``base:`` block saves its own, e.g. std.lm-tokenizer's ``file:``) and the
        fixed vocabulary (``vocabulary_file``)."""
        files: dict[str, Path | list[Path]] = {}
        if self._vocabulary_path is not None:
            files["vocabulary_file"] = self._vocabulary_path
        if self.config.base is not None:
            return files
        source = tokenizer_source(self.model_name)
        files["model"] = source if source.is_file() else model_files(source, tokenizer=True)
        return files

    def base_tokenize(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[int]]]:
        """Base token strings and ids (special tokens added, truncated to ``max_length``)."""
        enc = self.backend.encode_batch(list(texts), add_special_tokens=True)
        return [e.tokens for e in enc], [e.ids for e in enc]

    def merge(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[int]], Any]:
        """Base tokens and ids of ``texts`` and the :class:`~.merging.MergeResult` of the batch."""
        tokens, ids, result, _ = self._merge_counted(texts)
        return tokens, ids, result

    # -- the registry of merged tokens met outside a batch (encode_plain)
    def _token_ids(self, token: str, parts: tuple[int, ...]) -> list[int]:
        """The id(s) of a merged token for :meth:`encode_plain`: its base id, or ``V + r`` (registry index r);
        with a fixed vocabulary, a merged token outside it is split back into its base ids."""
        if len(parts) == 1:
            return [parts[0]]
        if token in self.vocab:
            return [self.vocab[token]]
        r = self.registry.get(token)
        if r is None:
            if self.fixed_vocabulary:
                self.counts["split_tokens"] += 1
                return list(parts)
            r = self.registry[token] = len(self.registry_tokens)
            self.registry_tokens.append(token)
            self.registry_parts.append(parts)
        return [self.base_vocab_size + r]

    def parts_of(self, token_id: int) -> tuple[int, ...]:
        """The base ids a token id (base or registry) stands for; InputError for an unknown id."""
        v = self.base_vocab_size
        if 0 <= token_id < v:
            return (token_id,)
        if v <= token_id < v + len(self.registry_parts):
            return self.registry_parts[token_id - v]
        raise InputError(
            f"token id {token_id} is neither a base id (< {v}) nor a merged token this tokenizer has produced "
            f"({len(self.registry_parts)} so far)",
            hint="ids >= the base vocabulary size come from this tokenizer's encode_plain, in this process",
        )

    def token_string(self, token_id: int) -> str:
        """The string of a token id (base or registry)."""
        v = self.base_vocab_size
        if token_id >= v:
            self.parts_of(token_id)
            return self.registry_tokens[token_id - v]
        return self.token_strings[token_id]

    @property
    def registry_size(self) -> int:
        """Merged tokens registered so far (ids ``V .. V + registry_size - 1``)."""
        return len(self.registry_tokens)

    # -- the LM API (std.text-corpus packing, std's LM evaluators, repmix generate)
    def encode_plain(self, text: str) -> list[int]:
        """Ids of a whole document, no special tokens, no truncation, merged within the document.

        The document is the merge batch (``max_merges`` merges; with ``null`` every pretoken becomes
        one token, whatever the batch). Merged tokens outside the base vocabulary get registry ids
        ``V + r``, stable for this tokenizer instance; a batch of such ids maps them to batch-local ids.
        """
        if not isinstance(text, str):
            raise InputError(f"encode_plain expects a string, got {type(text).__name__}")
        enc = self.plain_backend.encode(text, add_special_tokens=False)
        if not enc.ids:
            return []
        result = dynamic_merges(
            [enc.tokens], [[(i,) for i in enc.ids]],
            is_valid=self.is_valid, concat=self.concat, max_merges=self.config.max_merges,
        )
        return [i for t, p in zip(result.tokens[0], result.parts[0], strict=True) for i in self._token_ids(t, p)]

    def __call__(self, items: Sequence[Any]) -> DynamicBatch:
        """Tokenize and merge one batch: texts are merged together; lists of ids (packed blocks) are used as given.

        Texts get the base tokenizer's special tokens and are truncated to ``max_length`` base tokens
        *before* merging (counted in ``counts['truncated_texts']``, warned once). Lists of ids (from
        :meth:`encode_plain`, e.g. std.text-corpus blocks) hold base and registry ids; at most
        ``max_length`` of them. Every merged token outside the base vocabulary gets a batch-local id
        ``V + j`` (``new_tokens[j]``), whatever its registry id.
        """
        items = list(items)
        if not items:
            raise InputError("cannot tokenize an empty batch")
        texts: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                texts.append(item)
            elif not _is_id_list(item):
                raise InputError(
                    f"item {i} of the batch: expected a string or a list of token ids, got {type(item).__name__}"
                )
        merged: Any = None
        base_tokens: list[list[str]] = []
        if texts:
            empty = sum(1 for t in texts if not t.strip())
            if empty:
                if self.counts["empty_texts"] == 0:
                    log.warning("dynamic-bpe: empty or whitespace-only text holds no token to merge; it is encoded "
                                "as the base tokenizer's special tokens alone (counted in counts['empty_texts'])")
                self.counts["empty_texts"] += empty
            base_tokens, _, merged, truncated = self._merge_counted(texts)
            if truncated:
                if self.counts["truncated_texts"] == 0:
                    log.warning(f"dynamic-bpe: a text longer than max_length ({self.config.max_length} base tokens, "
                                "special tokens included) is truncated before merging (counted in "
                                "counts['truncated_texts'])")
                self.counts["truncated_texts"] += truncated
        seqs: list[tuple[list[str], list[tuple[int, ...]]]] = []
        k = 0
        for i, item in enumerate(items):
            if isinstance(item, str):
                seqs.append(self._restrict(merged.tokens[k], merged.parts[k]))
                k += 1
                continue
            row = [int(x) for x in (item.tolist() if hasattr(item, "tolist") else item)]
            if not row:
                raise InputError(f"item {i} of the batch is an empty list of token ids")
            if len(row) > self.config.max_length:
                raise InputError(
                    f"item {i} holds {len(row)} token ids, more than max_length {self.config.max_length}",
                    hint="pack the corpus into blocks no longer than the tokenizer's max_length",
                )
            seqs.append(([self.token_string(t) for t in row], [self.parts_of(t) for t in row]))
            self.counts["id_rows"] += 1
        new_index: dict[str, int] = {}
        new_parts: list[tuple[int, ...]] = []
        rows: list[list[int]] = []
        for seq_t, seq_p in seqs:
            row = []
            for tok, parts in zip(seq_t, seq_p, strict=True):
                if len(parts) == 1:
                    row.append(parts[0])
                elif tok in self.vocab:
                    row.append(self.vocab[tok])
                else:
                    j = new_index.get(tok)
                    if j is None:
                        j = new_index[tok] = len(new_parts)
                        new_parts.append(parts)
                    row.append(self.base_vocab_size + j)
            rows.append(row)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        self.counts["texts"] += len(texts)
        self.counts["batches"] += 1
        if merged is not None:
            self.counts["merges"] += len(merged.merges)
            self.counts["base_tokens"] += sum(self.content_count(t) for t in base_tokens)
            self.counts["dynamic_tokens"] += sum(
                self.content_count(t) for (t, _), item in zip(seqs, items, strict=True) if isinstance(item, str))
        return DynamicBatch(
            input_ids, mask, torch.zeros_like(input_ids), list(new_index), new_parts,
            [t for t, _ in seqs], [p for _, p in seqs], [sum(len(p) for p in ps) for _, ps in seqs],
            merged.merges if merged is not None else [],
        )

    def _restrict(self, tokens: list[str], parts: list[tuple[int, ...]]) -> tuple[list[str], list[tuple[int, ...]]]:
        """With a fixed vocabulary: split every merged token outside it (and the base vocabulary) into its base tokens."""
        if not self.fixed_vocabulary:
            return tokens, parts
        out_t: list[str] = []
        out_p: list[tuple[int, ...]] = []
        for tok, p in zip(tokens, parts, strict=True):
            if len(p) > 1 and tok not in self.vocab and tok not in self.registry:
                self.counts["split_tokens"] += 1
                out_t.extend(self.token_strings[i] for i in p)
                out_p.extend((i,) for i in p)
            else:
                out_t.append(tok)
                out_p.append(p)
        return out_t, out_p

    def _merge_counted(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[int]], Any, int]:
        """:meth:`merge`, and how many texts were truncated to ``max_length``."""
        enc = self.backend.encode_batch(list(texts), add_special_tokens=True)
        tokens, ids = [e.tokens for e in enc], [e.ids for e in enc]
        result = dynamic_merges(
            tokens, [[(i,) for i in seq] for seq in ids],
            is_valid=self.is_valid, concat=self.concat, max_merges=self.config.max_merges,
        )
        return tokens, ids, result, sum(1 for e in enc if e.overflowing)

    def content_count(self, tokens: Sequence[str]) -> int:
        """Tokens of one item that are not special tokens."""
        return sum(1 for t in tokens if t not in self.special_tokens)

    def decode(self, batch: Any, index: int | None = None, skip_special_tokens: bool = True) -> str:
        """Text of item ``index`` of a :class:`DynamicBatch`, or of a list of ids (base and registry ids).

        Either way the tokens' base ids, in order, are decoded by the base tokenizer (lossless).
        """
        if isinstance(batch, DynamicBatch):
            if index is None:
                raise InputError("decode(batch, index): give the index of the item to decode")
            ids = [i for parts in batch.parts[index] for i in parts]
        else:
            ids = [i for t in batch for i in self.parts_of(int(t))]
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def check_item(self, item: Any) -> str | None:
        """A string or a list of token ids."""
        if isinstance(item, str) or _is_id_list(item):
            return None
        return f"expected a string or a list of token ids, got {type(item).__name__}"

    def sort_key(self, item: Any) -> int:
        """Character length (ids: their number)."""
        if isinstance(item, str) or _is_id_list(item):
            return len(item)
        return 0


def _is_id_list(item: Any) -> bool:
    """A list/tuple of ints (or an integer array): a packed block of token ids."""
    if isinstance(item, (list, tuple)):
        return all(isinstance(x, int) and not isinstance(x, bool) for x in item)
    if hasattr(item, "tolist") and hasattr(item, "dtype") and not isinstance(item, str):
        return "int" in str(item.dtype)
    return False


class DynamicTransformer(Encoder):
    """The base transformer on dynamically merged tokens, new-token embeddings from a hypernetwork."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dynamic-tokenization.dynamic-transformer``."""

        model: str = Field(
            "all-MiniLM-L6-v2", description="the base model: a local folder or the packaged 'all-MiniLM-L6-v2'"
        )
        embeddings: Literal["hypernetwork", "mean"] = Field(
            "hypernetwork",
            description="hypernetwork: ZeTT predictions for new tokens; mean: the mean of their pieces' embeddings "
            "(FVT-style baseline, no hypernetwork)",
        )
        hypernetwork: dict[str, Any] | None = Field(
            default_factory=lambda: {"type": "zett.hypernetwork"},
            description="the hypernetwork block, e.g. {type: zett.hypernetwork, weights: runs/zett-hypernetwork} "
            "(without weights the network is untrained)",
        )
        hypernetwork_for: Literal["new", "all"] = Field(
            "new",
            description="new: predicted embeddings for merged tokens only (original tokens keep theirs); all: for "
            "every non-special token, as the official README example does",
        )

        _check_model = field_validator("model")(validate_model_dir)

        @model_validator(mode="after")
        def _needs_hypernetwork(self) -> DynamicTransformer.Config:
            if self.embeddings == "hypernetwork" and self.hypernetwork is None:
                raise ValueError("embeddings: hypernetwork needs a hypernetwork block "
                                 "(e.g. {type: zett.hypernetwork, weights: runs/zett-hypernetwork})")
            if self.embeddings == "mean" and self.hypernetwork_for == "all":
                raise ValueError("hypernetwork_for: all needs embeddings: hypernetwork")
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:  # type: ignore[override]
        """The hypernetwork block, built as a nested encoder (the zett plugin's zett.hypernetwork)."""
        if config.embeddings != "hypernetwork" or config.hypernetwork is None:
            return {}
        return {"hypernetwork": ("encoder", dict(config.hypernetwork))}

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:  # type: ignore[override]
        """``token`` [B, N', D] (N' after merging) and every hidden state."""
        hf = load_hf_config(config.model)
        return EncoderSignature(
            {"token": GranularitySpec("sequence", int(hf.hidden_size))},
            num_layers=int(hf.num_hidden_layers) + 1,
            layers_of="token",
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        if not isinstance(getattr(tok, "base_vocab_size", None), int) or not hasattr(tok, "fingerprint"):
            raise ConfigError(
                "dynamic-transformer needs the tower's tokenizer to be dynamic-tokenization.dynamic-bpe "
                f"(got {type(tok).__name__})",
                hint="tokenizer: {type: dynamic-tokenization.dynamic-bpe, model: all-MiniLM-L6-v2}",
            )
        hf_config = load_hf_config(config.model)
        rows = int(getattr(hf_config, "vocab_size", 0) or 0)
        own = _model_fingerprint(resolve_model_dir(config.model))
        if tok.base_vocab_size > rows or (own is not None and own != tok.fingerprint):
            raise ConfigError(
                f"the tokenizer's vocabulary ({tok.base_vocab_size} tokens, fingerprint {tok.fingerprint}) does not "
                f"match the model {config.model!r} ({rows} embeddings"
                + (f", its own tokenizer's fingerprint {own})" if own is not None else ")"),
                hint="give the tokenizer and the encoder the same model",
            )
        self.base_vocab_size = int(tok.base_vocab_size)
        self.special_ids = sorted(tok.vocab[t] for t in tok.special_tokens if t in tok.vocab)
        self.token_strings: list[str] = list(tok.token_strings)
        self.model = load_hf_model(config.model, pretrained=runtime.load_pretrained, config=hf_config)
        self.hypernetwork = runtime.nested.get("hypernetwork")
        if config.embeddings == "hypernetwork":
            hn = self.hypernetwork
            if hn is None or not callable(getattr(hn, "embed_surfaces", None)):
                raise ConfigError("the hypernetwork block must build a zett.hypernetwork (pip install repmix-zett)")
            if hn.fingerprint != tok.fingerprint or int(hn.dim) != int(hf_config.hidden_size):
                raise ConfigError(
                    f"the hypernetwork's source vocabulary (fingerprint {hn.fingerprint}, {hn.dim} dims) is not the "
                    f"tokenizer's ({tok.fingerprint}) with the model's {hf_config.hidden_size} dims",
                    hint="the hypernetwork block, the tokenizer and the encoder must name the same model",
                )
        self.model.train(self.training)

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json and the tokenizer files of the base model folder."""
        return {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}

    def _new_embeddings(self, batch: DynamicBatch, table: Tensor) -> Tensor:
        if not batch.new_tokens:
            return table.new_zeros((0, table.shape[1]))
        if self.config.embeddings == "mean":
            return torch.stack([table[torch.tensor(p, device=table.device)].mean(0) for p in batch.new_parts])
        return self.hypernetwork.embed_surfaces(batch.new_tokens).to(table.dtype)

    def forward(self, batch: DynamicBatch, output_layers: bool = False) -> Encoded:
        """Embed (original, merged) tokens, run the transformer; ``token`` over the merged sequence."""
        if not isinstance(batch, DynamicBatch):
            raise InputError(f"dynamic-transformer reads a dynamic-bpe batch, got {type(batch).__name__}")
        ids = batch.input_ids
        v = self.base_vocab_size
        table = self.model.get_input_embeddings().weight
        if ids.numel() and int(ids.max()) >= v + len(batch.new_tokens):
            raise InputError("token ids beyond the batch's new tokens: use the tower's dynamic-bpe tokenizer")
        emb = table[ids.clamp(max=v - 1)]
        is_new = ids >= v
        if bool(is_new.any()):
            new = self._new_embeddings(batch, table)
            emb = torch.where(is_new[..., None], new[(ids - v).clamp(min=0)], emb)
        if self.config.hypernetwork_for == "all":
            uniq = torch.unique(ids[(~is_new) & batch.attention_mask.bool()])
            plain = uniq[~torch.isin(uniq, torch.tensor(self.special_ids, dtype=uniq.dtype, device=uniq.device))]
            if len(plain):
                pred = self.hypernetwork.embed_surfaces([self.token_strings[int(i)] for i in plain]).to(emb.dtype)
                lookup = torch.zeros(v, dtype=torch.long, device=ids.device)
                lookup[plain] = torch.arange(len(plain), device=ids.device)
                hit = torch.isin(ids, plain)
                emb = torch.where(hit[..., None], pred[lookup[ids.clamp(max=v - 1)]], emb)
        out = self.model(
            inputs_embeds=emb, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids,
            output_hidden_states=output_layers, return_dict=True,
        )
        mask = batch.attention_mask.bool()
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded({"token": Granularity(out.last_hidden_state, mask)}, layers=layers, layers_of="token")


def _model_fingerprint(folder: Path) -> str | None:
    """Fingerprint of a model folder's own tokenizer, ``None`` when it holds none."""
    if not any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
        return None
    try:
        return vocabulary_fingerprint(_token_strings(load_base(str(folder))))
    except ConfigError:
        return None


def evaluation_texts(data: Examples) -> dict[str, list[str]]:
    """The texts an evaluation encodes, by group: BEIR queries and corpus, else every text column."""
    if "corpus_texts" in data.extras and "query_texts" in data.extras:
        return {"queries": list(data.extras["query_texts"]), "corpus": list(data.extras["corpus_texts"])}
    return {name: list(col) for name, col in data.columns.items() if col and isinstance(col[0], str)}


class TokenCounts(Evaluator):
    """Tokens per text before and after merging, batched as the std evaluators batch (sorted by length)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dynamic-tokenization.token-counts``."""

        tower: str | None = Field(None, description="the tower with the dynamic-bpe tokenizer (default: the first)")
        batch_size: int = Field(64, ge=1, description="texts per batch: use the evaluator's own batch_size")

    config: Config

    def evaluate(self, model: Any, data: Examples) -> dict[str, float]:
        """``tokens_per_text_base``, ``tokens_per_text_dynamic``, ``reduction``, merges per batch (per group, overall)."""
        tower = self.config.tower or model.tower_names[0]
        tok = model.tower(tower).tokenizer
        if not callable(getattr(tok, "merge", None)):
            raise ConfigError(f"dynamic-tokenization.token-counts: the tokenizer of tower {tower!r} is not dynamic-bpe")
        groups = evaluation_texts(data)
        if not groups:
            raise InputError("dynamic-tokenization.token-counts: the data has no text column")
        metrics: dict[str, float] = {}
        totals = {"texts": 0, "base": 0, "dynamic": 0, "merges": 0, "batches": 0}
        for name, texts in groups.items():
            order = sorted(range(len(texts)), key=lambda i: -tok.sort_key(texts[i]))
            base = dyn = merges = batches = 0
            for start in range(0, len(order), self.config.batch_size):
                chunk = [texts[i] for i in order[start : start + self.config.batch_size]]
                before, _, result = tok.merge(chunk)
                base += sum(tok.content_count(t) for t in before)
                dyn += sum(tok.content_count(t) for t in result.tokens)
                merges += len(result.merges)
                batches += 1
            metrics[f"{name}/tokens_per_text_base"] = base / len(texts)
            metrics[f"{name}/tokens_per_text_dynamic"] = dyn / len(texts)
            metrics[f"{name}/reduction"] = 1 - dyn / max(base, 1)
            for k, v in (("texts", len(texts)), ("base", base), ("dynamic", dyn), ("merges", merges), ("batches", batches)):
                totals[k] += v
        metrics["texts"] = float(totals["texts"])
        metrics["tokens_per_text_base"] = totals["base"] / totals["texts"]
        metrics["tokens_per_text_dynamic"] = totals["dynamic"] / totals["texts"]
        metrics["reduction"] = 1 - totals["dynamic"] / max(totals["base"], 1)
        metrics["merges_per_batch"] = totals["merges"] / max(totals["batches"], 1)
        metrics["empty_texts"] = float(sum(1 for texts in groups.values() for t in texts if not t.strip()))
        return metrics
