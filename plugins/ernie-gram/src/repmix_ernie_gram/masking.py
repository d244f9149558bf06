"""``ernie-gram.ngram-mask``: ERNIE-Gram's explicit n-gram masking (a corruptor).

Declared as the tower's ``corruption:`` (training batches only)::

    corruption:
      type: ernie-gram.ngram-mask
      rate: 0.15
      train_on: {type: std.text-corpus, path: ../shared/data/scifact/corpus.jsonl, split: train}
      top_k: {2: 1500, 3: 500}

At build time the lexicon ``V_N`` is extracted from ``train_on`` with the T-test
(:mod:`repmix_ernie_gram.lexicon`; cached under ``$REPMIX_CACHE/ernie-gram`` and bundled with a
saved model as ``file:``). On each training batch:

1. each row is segmented by forward maximum matching over ``V_N`` (n-grams never cross special
   tokens; with ``whole_words`` they start and end at word boundaries); every other candidate
   token is a segment of its own;
2. segments are taken whole, in a random order, until ``round(rate · candidates)`` tokens are
   covered (the SDK's :func:`~repmix.sdk.lm.select_phrases`): every segment alike
   (``selection: segments``) or lexicon n-grams first, single tokens filling the rest
   (``ngrams-first``);
3. each chosen n-gram (n ≥ 2) is **collapsed to one** ``[MASK]``: the row gets shorter by
   ``n − 1`` (``L′ = L − Σ(n_i − 1)``; rows are right-padded to the input width); a chosen single
   token is replaced BERT-style (:func:`~repmix.sdk.lm.bert_replace`, ``mask_prob`` /
   ``random_prob``);
4. the target at a collapsed n-gram's position is its identity in the joint vocabulary
   ``⟨V_F, V_N⟩`` (``|V_F| + k`` for lexicon entry ``k``); at a single token it is the token id.

The corruptor also holds the n-gram output embeddings ``W_N`` (``[|V_N|, H]`` and a bias) that
``ernie-gram.ngram-mlm`` uses for the n-gram half of the joint softmax: they are pre-training-only
weights, dropped with the corruption.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import unicodedata
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Corruptor,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    PipelineError,
    Runtime,
)
from repmix.sdk.lm import (
    bert_replace,
    candidate_mask,
    select_phrases,
    targets_granularity,
)
from torch import Tensor, nn

from repmix_ernie_gram.lexicon import Lexicon, build_lexicon, max_match, score_ngrams

logger = logging.getLogger(__name__)

ERNIE_GRAM_CITATION = (
    "Xiao, Li, Zhang, Sun, Tian, Wu & Wang (2021). ERNIE-Gram: Pre-Training with Explicitly N-Gram Masked "
    "Language Modeling for Natural Language Understanding. NAACL 2021. arXiv:2010.12148"
)


def cache_dir() -> Path:
    """Where built lexicons are kept: ``$REPMIX_CACHE/ernie-gram`` or ``~/.cache/repmix/ernie-gram``."""
    root = os.environ.get("REPMIX_CACHE") or str(Path.home() / ".cache" / "repmix")
    return Path(root) / "ernie-gram"


def word_starts_of(word_ids: Tensor) -> Tensor:
    """True where a word starts, from a tokenizer's ``word_ids`` ``[B, N]`` (-1 = no word)."""
    prev = torch.full_like(word_ids, -1)
    prev[:, 1:] = word_ids[:, :-1]
    return (word_ids >= 0) & (word_ids != prev)


def punctuation_ids(tokenizer: Any, ids: set[int]) -> set[int]:
    """The ``ids`` whose text (``tokenizer.decode``) is only punctuation and symbols (Unicode P* / S*)."""
    out = set()
    for i in ids:
        text = tokenizer.decode([i]).replace("##", "").strip()
        if text and all(unicodedata.category(ch)[0] in "PS" for ch in text):
            out.add(i)
    return out


class NgramMasking(Corruptor):
    """ERNIE-Gram: lexicon n-grams by maximum matching, each chosen n-gram collapsed to one [MASK]."""

    citation: ClassVar[str] = ERNIE_GRAM_CITATION

    class Config(ComponentConfig):
        """Options of ``ernie-gram.ngram-mask``."""

        rate: float = Field(0.15, gt=0, lt=1, description="share of (non-special) tokens to mask, n-gram tokens included")
        train_on: dict[str, Any] | None = Field(
            None, description="dataset block whose documents the lexicon is extracted from (e.g. std.text-corpus)"
        )
        file: str | None = Field(None, description="a lexicon JSON to use instead of extracting one (a saved model sets it)")
        top_k: dict[int, int] = Field(
            default_factory=lambda: {2: 1500, 3: 500},
            description="lexicon size per n-gram length: {length: how many n-grams}, lengths >= 2",
        )
        min_count: int = Field(5, ge=1, description="an n-gram must occur at least this often to enter the lexicon")
        min_t: float = Field(2.576, description="an n-gram's t-statistic must reach this (2.576: one-sided alpha 0.005)")
        whole_words: bool = Field(True, description="n-grams start and end at word boundaries (no word fragments)")
        skip_punctuation: bool = Field(
            True, description="leave out n-grams holding a token made only of punctuation or symbols (', and', '= 0')"
        )
        max_train_documents: int | None = Field(None, ge=1, description="extract from at most this many documents")
        selection: Literal["segments", "ngrams-first"] = Field(
            "segments", description="segments: every maximum-matching segment equally likely; "
            "ngrams-first: lexicon n-grams first, single tokens fill the budget",
        )
        mask_prob: float = Field(0.8, ge=0, le=1, description="share of chosen single tokens replaced by [MASK]")
        random_prob: float = Field(0.1, ge=0, le=1, description="share of chosen single tokens replaced by a random id")
        hidden: str = Field("token", description="encoder granularity the n-gram head reads (sizes W_N)")
        targets: str = Field("targets", description="name of the joint-vocabulary targets granularity")

        @field_validator("top_k")
        @classmethod
        def _lengths(cls, value: dict[int, int]) -> dict[int, int]:
            if not value:
                raise ValueError("top_k needs at least one n-gram length, e.g. {2: 1500, 3: 500}")
            for n, k in value.items():
                if n < 2 or n > 8:
                    raise ValueError(f"top_k lengths must be 2..8 tokens, got {n}")
                if k < 0:
                    raise ValueError(f"top_k[{n}] must not be negative, got {k}")
            return dict(sorted(value.items()))

        @model_validator(mode="after")
        def _check(self) -> NgramMasking.Config:
            if self.mask_prob + self.random_prob > 1 + 1e-9:
                raise ValueError(f"mask_prob + random_prob must be at most 1, got {self.mask_prob + self.random_prob:g}")
            if self.file is None and self.train_on is None:
                raise ValueError("the lexicon needs train_on: (a dataset block to extract it from) or file: (a lexicon JSON)")
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:
        if config.file is None and config.train_on is not None:
            return {"train_on": ("dataset", config.train_on)}
        return {}

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> dict[str, GranularitySpec]:
        spec = encoder.granularities.get(config.hidden)
        if spec is None or spec.values != "hidden" or spec.shape != "sequence":
            raise PipelineError(
                f"ernie-gram.ngram-mask sizes its n-gram head from the encoder's {config.hidden!r} states, "
                "which the encoder does not provide",
                hint="use an encoder with token states (e.g. std.hf-lm) or set hidden: to one of its granularities",
            )
        return {config.targets: GranularitySpec("sequence", None, values="ids")}

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        missing = [a for a in ("vocab_size", "mask_token_id", "special_ids") if getattr(tok, a, None) is None]
        if tok is None or missing:
            raise ConfigError(
                f"ernie-gram.ngram-mask needs a tokenizer with a mask token and a vocabulary "
                f"({', '.join(missing) or 'no tokenizer'} missing)",
                hint="use type: std.lm-tokenizer for the tower",
            )
        self.mask_id = int(tok.mask_token_id)
        self.vocab_size = int(tok.vocab_size)
        self.special_ids = [int(s) for s in tok.special_ids]
        pad = getattr(tok, "pad_token_id", None)
        self.pad_id = int(pad) if isinstance(pad, int) else 0
        sig = runtime.encoder
        spec = sig.granularities.get(config.hidden) if sig is not None else None
        if spec is None or not isinstance(spec.dim, int):
            raise ConfigError(f"ernie-gram.ngram-mask needs the width of the encoder's {config.hidden!r} states",
                              found=config.hidden)
        if config.file is not None:
            path = Path(config.file)
            if not path.is_file():
                raise ConfigError(f"lexicon file {str(path)!r} does not exist", found=str(path))
            try:
                self.lexicon = Lexicon.load(path)
            except ValueError as exc:
                raise ConfigError(str(exc), found=str(path)) from None
            if self.lexicon.vocab_size != self.vocab_size:
                raise ConfigError(
                    f"the lexicon in {str(path)!r} was built for a vocabulary of {self.lexicon.vocab_size} tokens, "
                    f"the tower's tokenizer has {self.vocab_size}",
                    hint="rebuild it with train_on: and this tokenizer",
                )
            self.lexicon_path = path
        else:
            self.lexicon_path = self._extract(runtime.nested.get("train_on"))
            self.lexicon = Lexicon.load(self.lexicon_path)
        logger.info("ernie-gram lexicon: %d n-grams %s (%s)", len(self.lexicon), self.lexicon.lengths(),
                    self.lexicon_path)
        # W_N: the n-gram half of the joint output layer <V_F, V_N> (BERT's initialisation)
        self.ngram_head = nn.Linear(int(spec.dim), len(self.lexicon))
        nn.init.normal_(self.ngram_head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.ngram_head.bias)

    # ---------------------------------------------------------------------------------- lexicon
    def _documents(self, dataset: Any) -> list[str]:
        if dataset is None:
            raise ConfigError("the lexicon must be extracted: give train_on: (a dataset block) or file:")
        examples = dataset.load(None)
        column = next(iter(examples.columns.values()))
        texts = [t for t in column if isinstance(t, str)]
        if not texts:
            raise InputError("the train_on data holds no text documents to extract the n-gram lexicon from")
        if self.config.max_train_documents is not None:
            texts = texts[: self.config.max_train_documents]
        return texts

    def _extract(self, dataset: Any) -> Path:
        """Tokenize ``train_on``, score its n-grams, keep the top ones; cached by settings and token ids."""
        c = self.config
        tok = self.tokenizer
        docs = [tok.encode_plain(t) for t in self._documents(dataset)]
        word_ids = getattr(tok, "word_ids", None) if c.whole_words else None
        starts: list[list[bool]] | None = None
        if callable(word_ids):
            starts = [word_starts_of(word_ids(torch.tensor([d], dtype=torch.long)))[0].tolist() if d else []
                      for d in docs]
        h = hashlib.sha256()
        settings = {k: getattr(c, k) for k in ("top_k", "min_count", "min_t", "whole_words", "skip_punctuation")}
        h.update(json.dumps({"settings": settings, "vocab": self.vocab_size, "specials": self.special_ids},
                            sort_keys=True).encode())
        for k, d in enumerate(docs):
            h.update(json.dumps(d).encode())
            if starts is not None:
                h.update(bytes(int(s) for s in starts[k]))
            h.update(b"\0")
        path = cache_dir() / f"lexicon-{h.hexdigest()[:20]}.json"
        if path.is_file():
            return path
        exclude = set(self.special_ids)
        if c.skip_punctuation:
            exclude |= punctuation_ids(tok, {i for d in docs for i in d})
        stats = score_ngrams(docs, max(c.top_k), word_starts=starts, exclude=exclude, min_count=c.min_count)
        lexicon = build_lexicon(stats, c.top_k, self.vocab_size, min_t=c.min_t)
        decode = getattr(tok, "decode", None)
        if callable(decode):
            lexicon.texts = [decode(list(g)) for g in lexicon.ngrams]
        lexicon.save(path)
        return path

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The lexicon JSON (config key ``file``), so a saved model never re-extracts it."""
        return {"file": self.lexicon_path}

    # ---------------------------------------------------------------------------------- masking
    def ngram_logits(self, hidden: Tensor) -> Tensor:
        """Logits over ``V_N`` ``[..., |V_N|]`` of hidden states ``[..., H]`` (the n-gram half of the joint softmax)."""
        return self.ngram_head(hidden)

    def segments(self, batch: Any) -> tuple[Tensor, list[list[tuple[int, int]]]]:
        """Candidate mask ``[B, L]`` and each row's maximum-matching lexicon spans ``(start, end)``."""
        ids = batch["input_ids"]
        cand = candidate_mask(ids, batch.get("attention_mask"), self.special_ids)
        words = batch.get("word_ids") if self.config.whole_words else None
        starts = word_starts_of(words).tolist() if words is not None else None
        rows = ids.tolist()
        allowed = cand.tolist()
        spans = [
            max_match(rows[b], self.lexicon.index, self.lexicon.max_n, allowed=allowed[b],
                      word_starts=starts[b] if starts is not None else None)
            for b in range(len(rows))
        ] if len(self.lexicon) else [[] for _ in rows]
        return cand, spans

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        c = self.config
        if "input_ids" not in batch:
            raise InputError("ernie-gram.ngram-mask reads input_ids from the tokenizer's batch")
        cand, spans = self.segments(batch)
        if c.selection == "segments":
            # every maximum-matching segment (a lexicon n-gram or a single candidate token) is one unit,
            # taken whole in a random order until the budget is met
            units = []
            for b, row in enumerate(cand.tolist()):
                inside = {i for s, e in spans[b] for i in range(s, e)}
                units.append(sorted(spans[b] + [(i, i + 1) for i, ok in enumerate(row) if ok and i not in inside]))
            chosen = select_phrases(cand, units, c.rate, generator, fill=False)
        else:
            chosen = select_phrases(cand, spans, c.rate, generator, fill=True)
        return self._collapse(batch, chosen, spans, generator)

    def _collapse(self, batch: Any, chosen: Tensor, spans: list[list[tuple[int, int]]],
                  generator: torch.Generator | None) -> tuple[Any, dict[str, Granularity]]:
        """Collapse every chosen lexicon n-gram to one position; BERT-replace chosen single tokens."""
        c = self.config
        ids = batch["input_ids"]
        bsz, width = ids.shape
        chosen_rows = chosen.tolist()
        attention = batch.get("attention_mask")
        present = attention.bool().tolist() if attention is not None else [[True] * width for _ in range(bsz)]
        rows = ids.tolist()
        keep_l = [[0] * width for _ in range(bsz)]  # source position of each output position
        real_l = [[False] * width for _ in range(bsz)]
        ngram_l = [[-1] * width for _ in range(bsz)]  # lexicon entry at a collapsed position
        single_l = [[False] * width for _ in range(bsz)]  # a chosen single token at this output position
        for b in range(bsz):
            row, picked, here = rows[b], chosen_rows[b], present[b]
            starts = {s: e for s, e in spans[b] if all(picked[s:e])}
            out = i = 0
            while i < width:
                if not here[i]:
                    i += 1
                    continue
                keep_l[b][out] = i
                real_l[b][out] = True
                if i in starts:
                    e = starts[i]
                    ngram_l[b][out] = self.lexicon.index[tuple(row[i:e])]
                    i = e
                else:
                    single_l[b][out] = picked[i]
                    i += 1
                out += 1
        keep = torch.tensor(keep_l, dtype=torch.long)
        real = torch.tensor(real_l, dtype=torch.bool)
        ngram_at = torch.tensor(ngram_l, dtype=torch.long)
        single = torch.tensor(single_l, dtype=torch.bool)
        device = ids.device
        keep, real, ngram_at, single = keep.to(device), real.to(device), ngram_at.to(device), single.to(device)
        collapsed = torch.gather(ids, 1, keep)
        collapsed = torch.where(real, collapsed, torch.full_like(collapsed, self.pad_id))
        is_ngram = ngram_at >= 0
        collapsed = torch.where(is_ngram, torch.full_like(collapsed, self.mask_id), collapsed)
        corrupted, targets = bert_replace(collapsed, single, self.mask_id, self.vocab_size,
                                          mask_prob=c.mask_prob, random_prob=c.random_prob, generator=generator)
        targets = torch.where(is_ngram, ngram_at + self.vocab_size, targets)
        out: dict[str, Any] = dict(batch)
        for key, value in batch.items():
            if key == "input_ids" or not isinstance(value, Tensor) or tuple(value.shape[:2]) != (bsz, width):
                continue
            gathered = torch.gather(value, 1, keep if value.dim() == 2 else
                                    keep.view(bsz, width, *([1] * (value.dim() - 2))).expand_as(value))
            fill = -1 if key == "word_ids" else 0
            pad_mask = real if value.dim() == 2 else real.view(bsz, width, *([1] * (value.dim() - 2)))
            out[key] = torch.where(pad_mask, gathered, torch.full_like(gathered, fill))
        if attention is not None:
            out["attention_mask"] = real.to(attention.dtype)
        out["input_ids"] = corrupted
        return out, {c.targets: targets_granularity(targets)}
