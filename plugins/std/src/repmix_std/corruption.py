"""``mlm-mask``: masked-LM corruption (BERT 80/10/10; token, whole-word, span, n-gram or entity selection).

Declared per tower next to the tokenizer and applied to training batches only::

    corruption: {type: mlm-mask, rate: 0.15, scheme: whole-word}

Selection, then replacement (both from :mod:`repmix.sdk.lm`):

* ``token`` — each non-special token with probability ``rate`` (transformers'
  ``DataCollatorForLanguageModeling``);
* ``whole-word`` — each word with probability ``rate``, all its tokens (words from the
  tokenizer's ``word_ids``);
* ``span`` — SpanBERT: whole-word spans of ``Geo(span_p)`` words (at most ``max_span``)
  until ``round(rate · tokens)`` tokens are chosen;
* ``ngram`` — n-grams of ``n`` in ``1..max_span`` words with probability ∝ 1/n (ERNIE / MacBERT style);
* ``entity`` — the phrases of an ``entities`` file first (one per line; LEM-style entity
  masking), whole, then random tokens up to the budget (``fill``).

Chosen positions become ``[MASK]`` with ``mask_prob``, a uniformly random id with
``random_prob``, and stay as they are otherwise. The targets granularity (``targets`` by
default) holds the original ids there and -100 elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Corruptor,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Runtime,
)
from repmix.sdk.lm import (
    bert_replace,
    candidate_mask,
    find_phrases,
    select_phrases,
    select_spans,
    select_tokens,
    select_words,
    targets_granularity,
)


class MaskingCorruptor(Corruptor):
    """Masked-LM corruption: choose positions by ``scheme``, replace them 80/10/10, emit targets."""

    citation: ClassVar[str] = (
        "Devlin et al. (2019) BERT (80/10/10, whole-word masking); Joshi et al. (2020) SpanBERT (spans); "
        "Xiao et al. (2021) ERNIE-Gram (n-grams); Fernando & Ranathunga (2025) Linguistic Entity Masking."
    )

    class Config(ComponentConfig):
        """Options of ``mlm-mask``."""

        rate: float = Field(0.15, gt=0, lt=1, description="fraction of (non-special) tokens to predict, in (0, 1)")
        scheme: Literal["token", "whole-word", "span", "ngram", "entity"] = Field(
            "token", description="how positions are chosen: token, whole-word, span (SpanBERT), ngram, entity"
        )
        mask_prob: float = Field(0.8, ge=0, le=1, description="share of chosen positions replaced by [MASK]")
        random_prob: float = Field(0.1, ge=0, le=1, description="share replaced by a random token (the rest is kept)")
        span_p: float = Field(0.2, gt=0, lt=1, description="span: p of the geometric span length (in words)")
        max_span: int = Field(10, ge=1, description="span / ngram: the longest span, in words")
        entities: str | None = Field(None, description="entity: a text file with one entity phrase per line")
        fill: bool = Field(True, description="entity: fill the budget with random tokens after the entities")
        targets: str = Field("targets", description="name of the targets granularity")

        @model_validator(mode="after")
        def _check(self) -> MaskingCorruptor.Config:
            if self.mask_prob + self.random_prob > 1 + 1e-9:
                raise ValueError(f"mask_prob + random_prob must be at most 1, got {self.mask_prob + self.random_prob:g}")
            if self.scheme == "entity" and not self.entities:
                raise ValueError("scheme 'entity' needs entities: (a file with one entity phrase per line)")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> dict[str, GranularitySpec]:
        return {config.targets: GranularitySpec("sequence", None, values="ids")}

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        missing = [a for a in ("vocab_size", "mask_token_id", "special_ids") if getattr(tok, a, None) is None]
        if tok is None or missing:
            raise ConfigError(
                f"mlm-mask needs a tokenizer with a mask token and a vocabulary ({', '.join(missing) or 'no tokenizer'} missing)",
                hint="use type: lm-tokenizer (trained, bytes or pretrained) for the tower",
            )
        self.mask_id = int(tok.mask_token_id)
        self.vocab_size = int(tok.vocab_size)
        self.special_ids = [int(s) for s in tok.special_ids]
        self.phrases: list[list[int]] = []
        if config.scheme == "entity":
            path = Path(config.entities or "")
            if not path.is_file():
                raise ConfigError(f"entities file {str(path)!r} does not exist", path="entities", found=str(path))
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            self.phrases = [tok.encode_plain(ln) for ln in lines] + [tok.encode_plain(" " + ln) for ln in lines]

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        c = self.config
        ids = batch["input_ids"]
        cand = candidate_mask(ids, batch.get("attention_mask"), self.special_ids)
        words = batch.get("word_ids")
        if c.scheme == "token":
            chosen = select_tokens(cand, c.rate, generator)
        elif c.scheme == "whole-word":
            chosen = select_words(cand, words, c.rate, generator) if words is not None else select_tokens(cand, c.rate, generator)
        elif c.scheme in ("span", "ngram"):
            chosen = select_spans(
                cand, c.rate, generator, lengths="geometric" if c.scheme == "span" else "ngram",
                p=c.span_p, max_length=c.max_span, word_ids=words,
            )
        else:
            chosen = select_phrases(cand, find_phrases(ids, self.phrases), c.rate, generator, fill=c.fill)
        corrupted, targets = bert_replace(
            ids, chosen, self.mask_id, self.vocab_size,
            mask_prob=c.mask_prob, random_prob=c.random_prob, generator=generator,
        )
        out = dict(batch)
        out["input_ids"] = corrupted
        return out, {c.targets: targets_granularity(targets)}
