"""repmix components of dynamic tokenization: the batch-level BPE tokenizer, the encoder, token counts.

* ``dynamic-tokenization.dynamic-bpe`` (tokenizer): tokenizes a batch with the base tokenizer,
  then merges the batch's most frequent valid adjacent pairs (:mod:`.merging`, within pretokens:
  :mod:`.boundaries`). A merged token whose string is in the base vocabulary gets that id (its
  original embedding); every other merged token gets a batch-local id ``V + j`` (``V`` = base
  vocabulary size) and travels as a string in :attr:`DynamicBatch.new_tokens`, with the base ids
  it was merged from.
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
import logging
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

CITATION = (
    "Feher, Vulić and Minixhofer (2025). Retrofitting (Large) Language Models with Dynamic Tokenization. "
    "ACL 2025. Official code: github.com/DariusFeher/dynamic-tokenization."
)


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

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="the base tokenizer: the packaged 'all-MiniLM-L6-v2', a model folder, or a tokenizer.json",
        )
        max_merges: int | None = Field(
            None, ge=0, description="merges per batch (max_nr_merges); null: until no valid pair is left (words)"
        )
        boundary: Literal["pretokens", "word"] = Field(
            "pretokens", description="merged tokens stay within one pretoken, or within one whitespace-free word"
        )
        max_length: int = Field(256, ge=2, description="truncate the base tokenization (special tokens included)")

        _check_model = field_validator("model")(_check_model_value)

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        backend = load_base(config.model)
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
                f"the base tokenizer of {config.model!r} is a {kind} model with word-internal marks "
                f"{getattr(backend.model, 'continuing_subword_prefix', None)!r}; dynamic-bpe handles WordPiece "
                "(BERT) and SentencePiece/byte-level BPE or Unigram tokenizers",
                found=config.model,
            )
        backend.enable_truncation(config.max_length)
        backend.no_padding()
        self.backend = backend
        self.fingerprint = vocabulary_fingerprint(self.token_strings)
        pad = next((t for t in ("[PAD]", "<pad>", "</s>", "<|endoftext|>") if t in self.vocab), None)
        self.pad_id = self.vocab[pad] if pad is not None else 0
        self.counts = {"texts": 0, "empty_texts": 0, "base_tokens": 0, "dynamic_tokens": 0, "merges": 0, "batches": 0}

    @property
    def vocab_size(self) -> int:
        """Base vocabulary size (new tokens get batch-local ids beyond it)."""
        return self.base_vocab_size

    @property
    def pad_token_id(self) -> int:
        """Id used for padding."""
        return self.pad_id

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The base tokenizer's files."""
        source = tokenizer_source(self.config.model)
        return {"model": source if source.is_file() else model_files(source, tokenizer=True)}

    def base_tokenize(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[int]]]:
        """Base token strings and ids (special tokens added, truncated to ``max_length``)."""
        enc = self.backend.encode_batch(list(texts), add_special_tokens=True)
        return [e.tokens for e in enc], [e.ids for e in enc]

    def merge(self, texts: Sequence[str]) -> tuple[list[list[str]], list[list[int]], Any]:
        """Base tokens and ids of ``texts`` and the :class:`~.merging.MergeResult` of the batch."""
        tokens, ids = self.base_tokenize(texts)
        result = dynamic_merges(
            tokens, [[(i,) for i in seq] for seq in ids],
            is_valid=self.is_valid, concat=self.concat, max_merges=self.config.max_merges,
        )
        return tokens, ids, result

    def __call__(self, items: Sequence[Any]) -> DynamicBatch:
        """Tokenize and merge one batch."""
        texts = list(items)
        if not texts:
            raise InputError("cannot tokenize an empty batch")
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise InputError(f"item {i} of the batch: expected a string, got {type(item).__name__}")
        empty = sum(1 for t in texts if not t.strip())
        if empty:
            if self.counts["empty_texts"] == 0:
                log.warning("dynamic-bpe: empty or whitespace-only text holds no token to merge; it is encoded as "
                            "the base tokenizer's special tokens alone (counted in counts['empty_texts'])")
            self.counts["empty_texts"] += empty
        base_tokens, _, result = self.merge(texts)
        new_index: dict[str, int] = {}
        new_parts: list[tuple[int, ...]] = []
        rows: list[list[int]] = []
        for seq_t, seq_p in zip(result.tokens, result.parts, strict=True):
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
        self.counts["merges"] += len(result.merges)
        self.counts["base_tokens"] += sum(self.content_count(t) for t in base_tokens)
        self.counts["dynamic_tokens"] += sum(self.content_count(t) for t in result.tokens)
        return DynamicBatch(
            input_ids, mask, torch.zeros_like(input_ids), list(new_index), new_parts,
            result.tokens, result.parts, [len(t) for t in base_tokens], result.merges,
        )

    def content_count(self, tokens: Sequence[str]) -> int:
        """Tokens of one item that are not special tokens."""
        return sum(1 for t in tokens if t not in self.special_tokens)

    def decode(self, batch: DynamicBatch, index: int, skip_special_tokens: bool = True) -> str:
        """The text of item ``index``: its tokens' base ids, in order, decoded by the base tokenizer."""
        ids = [i for parts in batch.parts[index] for i in parts]
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def sort_key(self, item: Any) -> int:
        """Character length."""
        return len(item) if isinstance(item, str) else 0


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
