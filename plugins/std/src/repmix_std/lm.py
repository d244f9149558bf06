"""Language modelling in std: ``lm-tokenizer``, ``hf-lm`` (encoder with an LM head), ``masked-lm`` and ``causal-lm``.

* ``lm-tokenizer`` — a tokenizer trained from a corpus with Hugging Face ``tokenizers``
  (``bpe``, ``byte-bpe``, ``unigram``, ``wordpiece``), raw UTF-8 ``bytes``, or a ``pretrained``
  one read from a model folder. A trained tokenizer is written to ``tokenizer.json`` in the
  repmix cache and bundled with a saved model (``saved_files``: the config's ``file:`` key),
  so a saved model never retrains it. Items are strings or lists of token ids (packed blocks).
* ``hf-lm`` — a transformers model with its LM head (``AutoModelForMaskedLM`` /
  ``AutoModelForCausalLM``), either pretrained (``model:``) or built from a config without
  weights (``architecture: {model_type: gpt2, n_layer: 4, ...}``). Provides ``token``
  (hidden states), ``logits`` (vocabulary logits, computed only when read) and ``ids`` (the
  ids it read). Causal ones implement :class:`repmix.sdk.CausalLM` (``next_logprobs`` with a
  KV cache) for scoring and generation.
* ``masked-lm`` / ``causal-lm`` — cross-entropy of ``logits`` against the corruptor's
  ``targets`` / the next ``ids``; the same numbers as ``BertForMaskedLM`` / ``GPT2LMHeadModel``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    Runtime,
    Tokenizer,
    TowerView,
)
from repmix.sdk.hf import config_from_architecture, model_files, resolve_model_dir
from repmix.sdk.lm import IGNORE_INDEX, LazyGranularity, pick_tower
from torch import Tensor

HF_CITATION = (
    "Wolf et al. (2020). Transformers: State-of-the-Art Natural Language Processing. "
    "EMNLP 2020 System Demonstrations. https://github.com/huggingface/transformers"
)
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "bos": "[BOS]", "eos": "[EOS]", "mask": "[MASK]"}
#: transformers model types that are causal (left-to-right) language models.
CAUSAL_TYPES = frozenset(
    {"gpt2", "llama", "gpt_neox", "mistral", "qwen2", "qwen3", "opt", "gptj", "phi", "phi3", "gpt_neo", "gemma",
     "gemma2", "olmo", "bloom", "falcon", "codegen", "mixtral", "starcoder2", "smollm3"}
)


def cache_dir() -> Path:
    """Where trained tokenizers are kept: ``$REPMIX_CACHE`` or ``~/.cache/repmix``."""
    return Path(os.environ.get("REPMIX_CACHE") or Path.home() / ".cache" / "repmix")


# ---------------------------------------------------------------------------------------- tokenizer
class LMTokenizer(Tokenizer):
    """A text tokenizer for language modelling: trained from a corpus, raw bytes, or pretrained.

    Batches hold ``input_ids``, ``attention_mask``, ``special_tokens_mask`` and ``word_ids``
    (the word each token belongs to, -1 for special and padding tokens; used by whole-word
    and span masking). Strings get the tokenizer's special tokens (``[BOS] text [EOS]`` for
    trained ones, ``[CLS] text [SEP]`` for BERT's) and are truncated to ``max_length``; lists
    of ids (packed blocks from ``text-corpus``) are used as they are.

    The LM API other components use: ``vocab_size``, ``pad_token_id``, ``mask_token_id``,
    ``bos_token_id``, ``eos_token_id``, ``special_ids``, ``encode_plain(text)`` (ids without
    special tokens), ``decode(ids)`` and ``token_bytes(id)``.
    """

    citation: ClassVar[str] = (
        "Sennrich et al. (2016) BPE; Kudo (2018) Unigram; Schuster & Nakajima (2012) WordPiece; "
        "Hugging Face tokenizers (https://github.com/huggingface/tokenizers)."
    )

    class Config(ComponentConfig):
        """Options of ``lm-tokenizer``."""

        algorithm: Literal["bpe", "byte-bpe", "unigram", "wordpiece", "bytes", "pretrained"] = Field(
            "bytes",
            description="bpe / unigram (whitespace kept as '▁', lossless), byte-bpe (GPT-2 style, lossless), "
            "wordpiece (BERT style, lowercase optional), bytes (UTF-8 bytes, no training), or pretrained (model:)",
        )
        vocab_size: int = Field(8000, ge=64, le=1_000_000, description="vocabulary size to train (special tokens included)")
        min_frequency: int = Field(2, ge=1, description="pairs seen fewer times are not merged (bpe, byte-bpe, wordpiece)")
        lowercase: bool = Field(False, description="lowercase before tokenizing (lossy: bits per byte then count the lowercased text)")
        max_length: int = Field(512, ge=2, description="truncate strings to this many tokens, special tokens included")
        train_on: dict[str, Any] | None = Field(
            None, description="dataset block whose documents train the tokenizer, e.g. {type: text-corpus, path: ..., split: train}"
        )
        max_train_documents: int | None = Field(None, ge=1, description="train on at most this many documents")
        model: str | None = Field(None, description="algorithm pretrained: a model folder or the packaged 'all-MiniLM-L6-v2'")
        file: str | None = Field(
            None, description="a trained tokenizer.json to load instead of training (a saved model sets it)"
        )

        @model_validator(mode="after")
        def _sources(self) -> LMTokenizer.Config:
            if self.algorithm == "pretrained" and not self.model:
                raise ValueError("algorithm 'pretrained' needs model: (a model folder or 'all-MiniLM-L6-v2')")
            if self.algorithm not in ("pretrained", "bytes") and not self.file and self.train_on is None:
                raise ValueError(
                    f"algorithm {self.algorithm!r} must be trained: give train_on: (a dataset block) or file: (a tokenizer.json)"
                )
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:
        if config.train_on is not None and not config.file and config.algorithm not in ("pretrained", "bytes"):
            return {"train_on": ("dataset", config.train_on)}
        return {}

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.max_length = config.max_length
        self.hf: Any = None
        self._file: Path | None = None
        self._model_dir: Path | None = None
        if config.algorithm == "bytes":
            self._init_bytes()
        elif config.algorithm == "pretrained":
            from transformers import AutoTokenizer

            self._model_dir = resolve_model_dir(config.model or "")
            self.hf = AutoTokenizer.from_pretrained(str(self._model_dir))
        else:
            path = Path(config.file) if config.file else self._train(runtime.nested.get("train_on"))
            if not path.is_file():
                raise ConfigError(f"tokenizer file {str(path)!r} does not exist", found=str(path))
            self._file = path
            self.hf = self._wrap(path)
        if self.hf is not None:
            self._init_hf()

    # -- construction
    def _init_bytes(self) -> None:
        specials = list(SPECIAL_TOKENS.values())
        self._byte_specials = {name: 256 + i for i, name in enumerate(SPECIAL_TOKENS)}
        self.vocab_size = 256 + len(specials)
        self.pad_token_id = self._byte_specials["pad"]
        self.bos_token_id = self._byte_specials["bos"]
        self.eos_token_id = self._byte_specials["eos"]
        self.mask_token_id = self._byte_specials["mask"]
        self.special_ids = sorted(self._byte_specials.values())

    def _init_hf(self) -> None:
        hf = self.hf
        self.vocab_size = len(hf)
        self.pad_token_id = hf.pad_token_id
        self.mask_token_id = hf.mask_token_id
        self.bos_token_id = hf.bos_token_id if hf.bos_token_id is not None else hf.cls_token_id
        self.eos_token_id = hf.eos_token_id if hf.eos_token_id is not None else hf.sep_token_id
        self.special_ids = sorted(set(hf.all_special_ids))
        tokens = hf.convert_ids_to_tokens(list(range(self.vocab_size)))
        algo = self.config.algorithm
        if algo == "byte-bpe":
            cont = [not t.startswith("Ġ") for t in tokens]
        elif algo in ("bpe", "unigram"):
            cont = [not t.startswith("▁") for t in tokens]
        else:  # wordpiece and pretrained BERT-style vocabularies
            cont = [t.startswith("##") for t in tokens]
        for s in self.special_ids:
            cont[s] = False
        self.continuation = torch.tensor(cont, dtype=torch.bool)

    def _wrap(self, path: Path) -> Any:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(
            tokenizer_file=str(path),
            pad_token=SPECIAL_TOKENS["pad"],
            unk_token=SPECIAL_TOKENS["unk"],
            bos_token=SPECIAL_TOKENS["bos"],
            eos_token=SPECIAL_TOKENS["eos"],
            mask_token=SPECIAL_TOKENS["mask"],
        )

    def _texts(self, dataset: Any) -> list[str]:
        if dataset is None:
            raise ConfigError("this tokenizer must be trained: give train_on: (a dataset block) or file:")
        examples = dataset.load(None)
        column = next(iter(examples.columns.values()))
        texts = [t for t in column if isinstance(t, str)]
        if not texts:
            raise InputError("the train_on data holds no text documents to train the tokenizer on")
        if self.config.max_train_documents is not None:
            texts = texts[: self.config.max_train_documents]
        return texts

    def _train(self, dataset: Any) -> Path:
        """Train on the documents of ``train_on`` (cached by config and text hash); return the tokenizer.json."""
        texts = self._texts(dataset)
        h = hashlib.sha256()
        cfg = self.config.model_dump(exclude={"file", "max_length"})
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        path = cache_dir() / "tokenizers" / f"{self.config.algorithm}-{h.hexdigest()[:20]}" / "tokenizer.json"
        if path.is_file():
            return path
        tok = build_trained_tokenizer(self.config.algorithm, texts, self.config.vocab_size,
                                      self.config.min_frequency, self.config.lowercase)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tokenizer.json.{os.getpid()}.tmp")
        tok.save(str(tmp))
        os.replace(tmp, path)
        return path

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The trained tokenizer.json (config key ``file``) or the pretrained tokenizer's files (``model``)."""
        if self._file is not None:
            return {"file": self._file}
        if self._model_dir is not None:
            names = [n for n in getattr(self.hf, "vocab_files_names", {}).values() if isinstance(n, str)]
            return {"model": model_files(self._model_dir, tokenizer=True, extra=names)}
        return {}

    # -- the LM API
    def encode_plain(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens and without truncation."""
        if self.hf is None:
            return list(text.encode("utf-8"))
        return list(self.hf(text, add_special_tokens=False, truncation=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; special tokens are dropped."""
        ids = [int(i) for i in ids]
        if self.hf is None:
            return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
        return self.hf.decode(ids, skip_special_tokens=True)

    def token_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes a token stands for (b'' for special tokens), for byte-level scoring."""
        if token_id in self.special_ids:
            return b""
        if self.hf is None:
            return bytes([token_id])
        tok = self.hf.convert_ids_to_tokens(int(token_id))
        if self.config.algorithm == "byte-bpe":
            return bytes(_UNICODE_TO_BYTE[c] for c in tok)
        if tok.startswith("##"):
            return tok[2:].encode()
        return tok.replace("▁", " ").encode()

    def _with_specials(self, texts: list[str]) -> list[list[int]]:
        """Ids of ``texts`` with the tokenizer's special tokens, truncated to ``max_length``."""
        if self.hf is None:
            return [[self.bos_token_id, *list(t.encode("utf-8"))[: self.max_length - 2], self.eos_token_id]
                    for t in texts]
        out = self.hf(texts, add_special_tokens=True, truncation=True, max_length=self.max_length)
        return [list(r) for r in out["input_ids"]]

    def word_ids(self, ids: Tensor) -> Tensor:
        """Word index of each token of ``ids`` [B, N] (-1 for special tokens)."""
        special = torch.zeros_like(ids, dtype=torch.bool)
        for s in self.special_ids:
            special |= ids == s
        if self.hf is None:  # bytes: a word starts after ASCII whitespace
            space = (ids == 32) | (ids == 10) | (ids == 9) | (ids == 13)
            prev_space = torch.ones_like(space)
            prev_space[:, 1:] = space[:, :-1] | special[:, :-1]
            starts = ~space & prev_space
        else:
            cont = self.continuation[ids.clamp(0, self.vocab_size - 1)]
            prev_special = torch.ones_like(special)
            prev_special[:, 1:] = special[:, :-1]
            starts = ~cont | prev_special
        starts &= ~special
        words = torch.cumsum(starts.long(), dim=1) - 1
        return torch.where(special | (words < 0), torch.full_like(words, -1), words)

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Strings (special tokens added, truncated) or lists of ids (as given) -> padded tensors."""
        rows: list[list[int]] = []
        if not items:
            raise InputError("cannot tokenize an empty batch")
        texts = [item for item in items if isinstance(item, str)]
        encoded = iter(self._with_specials(texts) if texts else [])
        for i, item in enumerate(items):
            if isinstance(item, str):
                rows.append(next(encoded))
            elif isinstance(item, (list, tuple)) or (hasattr(item, "tolist") and not isinstance(item, str)):
                row = [int(x) for x in (item.tolist() if hasattr(item, "tolist") else item)]
                if len(row) > self.max_length:
                    raise InputError(
                        f"item {i} holds {len(row)} token ids, more than max_length {self.max_length}",
                        hint="pack the corpus into blocks no longer than the tokenizer's max_length",
                    )
                rows.append(row)
            else:
                raise InputError(f"item {i} of the batch: expected a string or a list of token ids, got {type(item).__name__}")
        width = max(len(r) for r in rows)
        pad = self.pad_token_id if self.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        special = torch.zeros_like(mask)
        for s in self.special_ids:
            special |= ids == s
        words = self.word_ids(ids).masked_fill(~mask, -1)
        return {"input_ids": ids, "attention_mask": mask.long(), "special_tokens_mask": special & mask, "word_ids": words}

    def check_item(self, item: Any) -> str | None:
        if isinstance(item, str) or isinstance(item, (list, tuple)):
            return None
        return f"expected a string or a list of token ids, got {type(item).__name__}"

    def sort_key(self, item: Any) -> int:
        return len(item) if isinstance(item, (str, list, tuple)) else 0


def build_trained_tokenizer(algorithm: str, texts: Sequence[str], vocab_size: int, min_frequency: int,
                            lowercase: bool) -> Any:
    """A ``tokenizers.Tokenizer`` trained on ``texts`` with repmix's special tokens and ``[BOS] $A [EOS]``."""
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = list(SPECIAL_TOKENS.values())
    norm = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
    if algorithm == "byte-bpe":
        tok = HFTok(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        norm = [n for n in norm if not isinstance(n, normalizers.NFC)]  # byte-level is lossless as it is
    elif algorithm == "bpe":
        tok = HFTok(models.BPE(unk_token=SPECIAL_TOKENS["unk"], byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      show_progress=False)
    elif algorithm == "unigram":
        tok = HFTok(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                          unk_token=SPECIAL_TOKENS["unk"], show_progress=False)
    elif algorithm == "wordpiece":
        tok = HFTok(models.WordPiece(unk_token=SPECIAL_TOKENS["unk"]))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)
    else:
        raise ConfigError(f"cannot train a tokenizer with algorithm {algorithm!r}")
    if norm:
        tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
    bos, eos = SPECIAL_TOKENS["bos"], SPECIAL_TOKENS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B:1 {eos}:1",
        special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))],
    )
    return tok


# ------------------------------------------------------------------------------------------ encoder
def _is_causal(model_type: str, head: str | None) -> bool:
    return head == "causal" if head is not None else model_type in CAUSAL_TYPES


class HFLanguageModel(Encoder):
    """A transformers language model with its head: pretrained (``model:``) or from a config (``architecture:``).

    Provides ``token`` (last hidden states, or the layers named in ``granularities``),
    ``logits`` (the head's vocabulary logits, computed only when read) and ``ids`` (the ids
    it read, an ids granularity). A causal one is a :class:`repmix.sdk.CausalLM`.
    """

    citation: ClassVar[str] = HF_CITATION

    class Config(ComponentConfig):
        """Options of ``hf-lm``."""

        model: str | None = Field(None, description="pretrained model folder or 'all-MiniLM-L6-v2' (weights loaded; a missing head is initialised)")
        architecture: dict[str, Any] | None = Field(
            None,
            description="transformers config to build without pretrained weights: model_type (bert, gpt2, llama, ...) "
            "and its keys (e.g. n_layer, n_embd, n_head); vocab_size and special ids come from the tokenizer",
        )
        head: Literal["masked", "causal"] | None = Field(
            None, description="masked or causal LM head (default: causal for gpt2/llama/..., masked otherwise)"
        )
        tie_embeddings: bool = Field(True, description="tie the vocabulary head to the input embeddings (false: a free head)")
        granularities: dict[str, int] = Field(
            default_factory=lambda: {"token": -1},
            description="hidden-state granularities: name -> layer index (0 = embeddings, -1 = last)",
        )
        dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="weights dtype")
        train_body: bool = Field(
            True, description="false: freeze the transformer body and train the LM head alone (a head warm-up "
            "before continued pre-training; a decoder tied to the frozen input embeddings stays frozen)",
        )

        @model_validator(mode="after")
        def _one_source(self) -> HFLanguageModel.Config:
            if (self.model is None) == (self.architecture is None):
                raise ValueError("give exactly one of model: (pretrained) or architecture: (from scratch)")
            if self.architecture is not None and not isinstance(self.architecture.get("model_type"), str):
                raise ValueError("architecture needs model_type (e.g. gpt2, bert, llama)")
            for reserved in ("logits", "ids"):
                if reserved in self.granularities:
                    raise ValueError(f"granularity name {reserved!r} is reserved for the head's output")
            return self

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str | None) -> str | None:
            if value is None:
                return None
            from repmix.sdk.hf import validate_model_dir

            return validate_model_dir(value)

    config: Config

    @staticmethod
    def _hf_config(config: Config, vocab_size: int | None = None, tokenizer: Any = None) -> Any:
        if config.model is not None:
            from repmix.sdk.hf import load_hf_config

            hf = load_hf_config(config.model)
        else:
            hf = config_from_architecture(config.architecture or {})
            if vocab_size is not None:
                hf.vocab_size = vocab_size
            if tokenizer is not None:
                for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
                    value = getattr(tokenizer, key, None)
                    if value is not None:
                        setattr(hf, key, value)
        hf.tie_word_embeddings = config.tie_embeddings
        if config.dtype != "float32":
            hf.torch_dtype = config.dtype
        return hf

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        hf = cls._hf_config(config)
        hidden = getattr(hf, "hidden_size", None)
        layers = getattr(hf, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(layers, int):
            raise ConfigError(f"{getattr(hf, 'model_type', '?')} declares no hidden_size / num_hidden_layers")
        n = layers + 1
        for name, index in config.granularities.items():
            if not -n <= index < n:
                raise ConfigError(f"granularity {name!r} reads layer {index}, but the model has {n} hidden states",
                                  found=index)
        specs = {name: GranularitySpec("sequence", hidden) for name in config.granularities}
        vocab = getattr(hf, "vocab_size", None) if config.model is not None else None
        specs["logits"] = GranularitySpec("sequence", vocab)
        specs["ids"] = GranularitySpec("sequence", vocab, values="ids")
        layers_of = "token" if "token" in config.granularities else next(iter(config.granularities))
        return EncoderSignature(specs, num_layers=n, layers_of=layers_of,
                                causal=_is_causal(hf.model_type, config.head))

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

        tok = runtime.tokenizer
        vocab = getattr(tok, "vocab_size", None)
        hf = self._hf_config(config, vocab if config.architecture is not None else None, tok)
        self.causal = _is_causal(hf.model_type, config.head)
        if self.causal:
            hf.is_decoder = True
        auto = AutoModelForCausalLM if self.causal else AutoModelForMaskedLM
        dtype = getattr(torch, config.dtype)
        try:
            if config.model is not None and runtime.load_pretrained:
                import warnings

                from transformers.utils import logging as hf_logging

                verbosity = hf_logging.get_verbosity()
                hf_logging.set_verbosity_error()  # the load report lists the new head as "missing": expected
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        self.lm = auto.from_pretrained(str(resolve_model_dir(config.model)), config=hf, dtype=dtype)
                finally:
                    hf_logging.set_verbosity(verbosity)
            else:
                self.lm = auto.from_config(hf, dtype=dtype)
        except ValueError as exc:
            raise ConfigError(f"transformers cannot build a {'causal' if self.causal else 'masked'} LM "
                              f"for model type {hf.model_type!r}: {str(exc).splitlines()[0]}",
                              hint="set head: masked or head: causal to match the model type") from None
        rows = self.lm.get_input_embeddings().weight.shape[0]
        if isinstance(vocab, int) and vocab > rows:
            raise ConfigError(f"the tokenizer emits {vocab} token ids but the model embeds only {rows}",
                              hint="use the model's own tokenizer (algorithm: pretrained, model: the same folder)")
        self.context_length: int | None = next(
            (int(v) for k in ("n_positions", "max_position_embeddings")
             if isinstance(v := getattr(hf, k, None), int)), None)
        max_len = getattr(tok, "max_length", None)
        if self.context_length is not None and isinstance(max_len, int) and max_len > self.context_length:
            raise ConfigError(
                f"the tokenizer's max_length {max_len} exceeds the model's {self.context_length} positions",
                hint=f"set the tokenizer's max_length to at most {self.context_length}",
            )
        self.model_dir = resolve_model_dir(config.model) if config.model is not None else None
        prefix = self.lm.base_model_prefix
        heads = [m for name, m in self.lm.named_children() if name != prefix]
        if len(heads) != 1:
            raise ConfigError(f"cannot find the LM head of {type(self.lm).__name__}")
        self.head = heads[0]
        if not config.train_body:
            self.lm.base_model.requires_grad_(False)
        self.num_layers = int(hf.num_hidden_layers) + 1
        import inspect

        params = inspect.signature(type(self.lm).forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # transformers 5.x renamed it
        self._layer_of = {k: i % self.num_layers for k, i in config.granularities.items()}
        self._input_keys = ["input_ids", "attention_mask"] + (
            ["token_type_ids"] if getattr(hf, "type_vocab_size", 0) else [])

    def saved_files(self) -> dict[str, Path | list[Path]]:
        return {"model": model_files(self.model_dir)} if self.model_dir is not None else {}

    @property
    def hidden_size(self) -> int:
        return int(self.lm.config.hidden_size)

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        want = output_layers or any(i != self.num_layers - 1 for i in self._layer_of.values())
        out = self.lm.base_model(**inputs, output_hidden_states=want, return_dict=True)
        mask = batch["attention_mask"].bool()
        last = out.last_hidden_state
        states = tuple(out.hidden_states) if want else None
        grans: dict[str, Granularity] = {}
        for name, index in self._layer_of.items():
            grans[name] = Granularity(last if index == self.num_layers - 1 or states is None else states[index], mask)
        grans["logits"] = LazyGranularity(lambda: self.head(last), mask)
        grans["ids"] = Granularity(batch["input_ids"], mask)
        return Encoded(grans, layers=states, layers_of="token" if "token" in grans else next(iter(grans)))

    # -- CausalLM
    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs [B, T, V] of the token after each of ``ids`` (following ``cache``) and the new KV cache."""
        if not self.causal:
            raise InputError("this model has a masked-LM head, not a causal one: it cannot score or generate left to right")
        if attention_mask is None and cache is None:
            attention_mask = torch.ones_like(ids)
        out = self.lm(input_ids=ids, attention_mask=attention_mask, use_cache=True, return_dict=True,
                      **{self._cache_arg: cache})
        new_cache = getattr(out, "cache", None) if self._cache_arg == "cache" else None
        if new_cache is None:
            new_cache = getattr(out, "past_key_values", None)
        return torch.log_softmax(out.logits.float(), dim=-1), new_cache


def is_causal_lm(encoder: Any) -> bool:
    """True when ``encoder`` can score and generate left to right."""
    return callable(getattr(encoder, "next_logprobs", None)) and getattr(encoder, "causal", True) is not False


# ------------------------------------------------------------------------------------------- losses
_LM_TOWER_HINT = "name the tower (tower: text) and use an encoder with an LM head, e.g. hf-lm"


class _LMLossConfig(ComponentConfig):
    tower: str | None = Field(None, description="tower whose granularities are read (default: the only tower with logits)")
    logits: str = Field("logits", description="granularity of vocabulary logits [B, N, V]")


def _check_logits(loss: str, config: Any, view: TowerView) -> None:
    spec = view.granularities.get(config.logits)
    if spec is None or spec.values != "hidden" or spec.shape != "sequence":
        raise PipelineError(
            f"{loss} reads vocabulary logits {view.name}.{config.logits}, which tower {view.name!r} does not provide",
            hint="use an encoder with an LM head (type: hf-lm)",
        )


def _tower_outputs(inputs: LossInputs, config: Any) -> Encoded:
    if config.tower is not None:
        return inputs.outputs[config.tower]
    for enc in inputs.outputs.values():
        if config.logits in enc:
            return enc
    raise InputError(f"no tower output holds {config.logits!r}")


class MaskedLMLoss(Loss):
    """Masked-LM cross-entropy over the corruptor's targets (``BertForMaskedLM``'s loss)."""

    citation: ClassVar[str] = (
        "Devlin et al. (2019). BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding. NAACL."
    )
    num_alignments: ClassVar[int | None] = 0

    class Config(_LMLossConfig):
        targets: str = Field("targets", description="ids granularity of targets (the corruption's; -100 = not predicted)")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        view = pick_tower("masked-lm", config.tower, towers, provides=config.logits, hint=_LM_TOWER_HINT)
        if view.encoder.causal:
            raise PipelineError(
                f"masked-lm needs a bidirectional encoder, but tower {view.name!r} has a causal decoder "
                "(each position sees only its left context, so masked tokens cannot be predicted from both sides)",
                hint="use causal-lm for a decoder, or a masked-LM architecture (model_type: bert, head: masked)",
            )
        _check_logits("masked-lm", config, view)
        spec = view.granularities.get(config.targets)
        if spec is None or spec.values != "ids":
            raise PipelineError(
                f"masked-lm reads targets {view.name}.{config.targets}, but tower {view.name!r} has no corruption "
                "that emits them",
                hint="add corruption: {type: mlm-mask, rate: 0.15} to the tower",
            )

    def forward(self, inputs: LossInputs) -> LossOutput:
        enc = _tower_outputs(inputs, self.config)
        logits = enc[self.config.logits].hidden
        targets = enc[self.config.targets].hidden
        flat_t = targets.reshape(-1)
        sel = flat_t != IGNORE_INDEX
        n = int(sel.sum())
        if n == 0:  # nothing masked in this batch: a zero loss that keeps the graph
            return LossOutput(logits.sum() * 0.0, {"targets": 0.0})
        flat_l = logits.reshape(-1, logits.shape[-1])
        # as BertForMaskedLM: cross-entropy over every position, ignore_index -100 (no copy of the logits)
        value = F.cross_entropy(flat_l.float(), flat_t, ignore_index=IGNORE_INDEX)
        with torch.no_grad():
            acc = float((flat_l[sel].argmax(-1) == flat_t[sel]).float().mean())
        return LossOutput(value, {"accuracy": acc, "targets": float(n)})


class CausalLMLoss(Loss):
    """Next-token cross-entropy (``GPT2LMHeadModel``'s loss): logits at t predict ids at t+1, padding ignored."""

    citation: ClassVar[str] = "Radford et al. (2019). Language Models are Unsupervised Multitask Learners. OpenAI."
    num_alignments: ClassVar[int | None] = 0

    class Config(_LMLossConfig):
        ids: str = Field("ids", description="ids granularity of the tokens read (the encoder's)")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        view = pick_tower("causal-lm", config.tower, towers, provides=config.logits, hint=_LM_TOWER_HINT)
        if view.encoder.causal is False:
            raise PipelineError(
                f"causal-lm needs a causal decoder, but tower {view.name!r} has a bidirectional encoder "
                "(it sees the token it would predict)",
                hint="use masked-lm with a corruption: block, or a causal architecture (model_type: gpt2 / llama)",
            )
        _check_logits("causal-lm", config, view)
        spec = view.granularities.get(config.ids)
        if spec is None or spec.values != "ids":
            raise PipelineError(f"causal-lm reads token ids {view.name}.{config.ids}, which the tower does not provide")

    def forward(self, inputs: LossInputs) -> LossOutput:
        enc = _tower_outputs(inputs, self.config)
        logits = enc[self.config.logits].hidden
        ids_g = enc[self.config.ids]
        labels = ids_g.hidden.masked_fill(~ids_g.full_mask(), IGNORE_INDEX)
        # as transformers' ForCausalLMLoss: shift the labels (pad the last with -100), not the logits
        shift_labels = F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:].reshape(-1)
        n = int((shift_labels != IGNORE_INDEX).sum())
        if n == 0:
            return LossOutput(logits.sum() * 0.0, {"targets": 0.0})
        value = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), shift_labels, ignore_index=IGNORE_INDEX)
        return LossOutput(value, {"targets": float(n)})


def _gpt2_byte_alphabet() -> dict[str, int]:
    """Character -> byte of the byte-level BPE alphabet (GPT-2's, which HF ``tokenizers`` ByteLevel uses).

    Written here because transformers 5 no longer exposes ``bytes_to_unicode``: printable
    bytes stand for themselves, every other byte for the character 256 + its rank among them.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + extra)] = b
            extra += 1
    return mapping


_UNICODE_TO_BYTE = _gpt2_byte_alphabet()
