"""``lem.mask``: Linguistic Entity Masking as a repmix corruptor (Fernando & Ranathunga, 2025).

Declared per tower next to the tokenizer, and read by ``std.masked-lm`` like any MLM corruption::

    corruption: {type: lem.mask, rate: 0.15, tagger: spacy, spacy_model: en_core_web_sm}

For each training batch: the tokenizer's ``word_ids`` group subwords into words; each row is cut
into segments at its special tokens (documents of a packed block are tagged apart); the words are
tagged (named entities, verbs, nouns; :mod:`repmix_lem.taggers`); :func:`repmix_lem.selection.lem_select`
chooses **one random subword per selected word** — entity / verb / noun words first, up to the
15 % budget, then random words (``fill``); the chosen positions are replaced 80/10/10 by
:func:`repmix.sdk.lm.bert_replace`. Targets are the original ids there, -100 elsewhere.
"""

from __future__ import annotations

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
    InputError,
    Runtime,
)
from repmix.sdk.lm import bert_replace, candidate_mask, targets_granularity

from repmix_lem.selection import group_words, lem_select_batch
from repmix_lem.taggers import LexiconTagger, SpacyTagger, resolve_spacy_model

__all__ = ["ENTITY_TYPES", "NOUN_TAGS", "VERB_TAGS", "LEMCorruptor", "word_texts"]

#: spaCy (OntoNotes) entity labels counted as named entities: the name-like ones (CoNLL's PER,
#: ORG, LOC, MISC); numeric labels (CARDINAL, DATE, PERCENT, QUANTITY, ...) are left out, as the
#: official code leaves numbers out.
ENTITY_TYPES = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE")
#: The official English verb and noun tag lists (Penn Treebank).
VERB_TAGS = ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")
NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")


def word_texts(tokenizer: Any, ids: list[int], table: list[bytes] | None) -> str:
    """The text of one word from its token ids (``table[id]`` = the bytes a token spells, if known)."""
    if table is not None:
        return b"".join(table[i] for i in ids).decode("utf-8", errors="replace").strip()
    return str(tokenizer.decode(ids)).strip()


class LEMCorruptor(Corruptor):
    """Linguistic Entity Masking: one random subword per named-entity / verb / noun word, within a 15 % budget."""

    citation: ClassVar[str] = (
        "Fernando, A. & Ranathunga, S. (2025). Linguistic Entity Masking to Improve Cross-Lingual Representation of "
        "Multilingual Language Models for Low-Resource Languages. Knowledge and Information Systems (arXiv 2501.05700)."
    )

    class Config(ComponentConfig):
        """Options of ``lem.mask``."""

        rate: float = Field(0.15, gt=0, lt=1, description="global budget: round(rate x candidate tokens) positions per row")
        p_entity: float = Field(1.0, ge=0, le=1, description="named-entity budget: round(p x entity subword tokens), at least 1")
        p_verb: float = Field(1.0, ge=0, le=1, description="verb budget: round(p x verb subword tokens), at least 1")
        p_noun: float = Field(1.0, ge=0, le=1, description="noun budget: round(p x noun subword tokens), at least 1")
        fill: bool = Field(True, description="fill the rest of the global budget with random words (one subword each)")
        mask_prob: float = Field(0.8, ge=0, le=1, description="share of chosen positions replaced by [MASK]")
        random_prob: float = Field(0.1, ge=0, le=1, description="share replaced by a random token (the rest is kept)")
        tagger: Literal["spacy", "lexicon"] = Field(
            "spacy", description="spacy: a spaCy pipeline's POS tags and entities; lexicon: a word<TAB>classes file"
        )
        spacy_model: str = Field(
            "en_core_web_sm", description="spaCy pipeline: an installed package name or a pipeline folder"
        )
        lexicon: str | None = Field(None, description="tagger lexicon: file of 'word<TAB>entity,verb,noun' lines")
        entity_types: list[str] = Field(default_factory=lambda: list(ENTITY_TYPES),
                                        description="spaCy entity labels that count as named entities")
        verb_tags: list[str] = Field(default_factory=lambda: list(VERB_TAGS), description="fine-grained tags of verbs")
        noun_tags: list[str] = Field(default_factory=lambda: list(NOUN_TAGS), description="fine-grained tags of nouns")
        cache_size: int = Field(100_000, ge=0, description="segments whose tags are kept (re-tagging is skipped on a repeat)")
        targets: str = Field("targets", description="name of the targets granularity")

        @model_validator(mode="after")
        def _check(self) -> LEMCorruptor.Config:
            if self.mask_prob + self.random_prob > 1 + 1e-9:
                raise ValueError(f"mask_prob + random_prob must be at most 1, got {self.mask_prob + self.random_prob:g}")
            if self.tagger == "lexicon" and not self.lexicon:
                raise ValueError("tagger 'lexicon' needs lexicon: (a file of 'word<TAB>classes' lines)")
            if self.tagger == "spacy":
                if self.p_entity == 0 and self.p_verb == 0 and self.p_noun == 0:
                    raise ValueError("p_entity, p_verb and p_noun are all 0: nothing to tag (use std.mlm-mask)")
                import importlib.util

                if importlib.util.find_spec("spacy") is None:
                    raise ValueError("tagger 'spacy' needs spaCy: pip install 'repmix-lem[spacy]' "
                                     "(or use tagger: lexicon)")
                try:
                    resolve_spacy_model(self.spacy_model)
                except ConfigError as exc:
                    hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
                    raise ValueError(f"{exc.message}{hint}") from None
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
                f"lem.mask needs a tokenizer with a mask token and a vocabulary ({', '.join(missing) or 'no tokenizer'} missing)",
                hint="use type: std.lm-tokenizer (trained or pretrained) for the tower",
            )
        self.mask_id = int(tok.mask_token_id)
        self.vocab_size = int(tok.vocab_size)
        self.special_ids = [int(s) for s in tok.special_ids]
        self._table: list[bytes] | None = None
        if callable(getattr(tok, "token_bytes", None)):
            self._table = [tok.token_bytes(i) for i in range(self.vocab_size)]
        if config.tagger == "spacy":
            self.tag: Any = SpacyTagger(
                config.spacy_model, entity_types=config.entity_types, verb_tags=config.verb_tags,
                noun_tags=config.noun_tags, entities=config.p_entity > 0, pos=config.p_verb > 0 or config.p_noun > 0,
                cache_size=config.cache_size,
            )
        else:
            self.tag = LexiconTagger(config.lexicon or "")

    def word_classes(self, ids: torch.Tensor, cand: torch.Tensor, words: list[list[list[int]]]) -> list[list[int]]:
        """Class flags of every word of every row; a row is tagged as segments cut at special tokens."""
        ids_l = ids.cpu().tolist()
        cand_l = cand.cpu().tolist()
        segments: list[list[str]] = []
        owner: list[tuple[int, int]] = []  # (row, index of the segment's first word)
        for b, row_words in enumerate(words):
            row, c_row = ids_l[b], cand_l[b]
            start = 0
            for k in range(1, len(row_words) + 1):
                # a segment ends before a special token or padding (a document boundary of a packed block)
                if k == len(row_words) or not all(c_row[row_words[k - 1][-1] + 1 : row_words[k][0]]):
                    segments.append([word_texts(self.tokenizer, [row[p] for p in w], self._table)
                                     for w in row_words[start:k]])
                    owner.append((b, start))
                    start = k
        tagged = self.tag(segments)
        classes: list[list[int]] = [[0] * len(w) for w in words]
        for (b, start), flags in zip(owner, tagged, strict=True):
            classes[b][start : start + len(flags)] = flags
        return classes

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        c = self.config
        ids = batch["input_ids"]
        word_ids = batch.get("word_ids")
        if word_ids is None:
            raise InputError("lem.mask needs the batch's word_ids (which subwords form a word)",
                             hint="use std.lm-tokenizer, whose batches carry word_ids")
        cand = candidate_mask(ids, batch.get("attention_mask"), self.special_ids)
        words = group_words(cand, word_ids)
        classes = self.word_classes(ids, cand, words)
        chosen = lem_select_batch(cand, words, classes, rate=c.rate, p_entity=c.p_entity, p_verb=c.p_verb,
                                  p_noun=c.p_noun, fill=c.fill, generator=generator)
        corrupted, targets = bert_replace(ids, chosen, self.mask_id, self.vocab_size,
                                          mask_prob=c.mask_prob, random_prob=c.random_prob, generator=generator)
        out = dict(batch)
        out["input_ids"] = corrupted
        return out, {c.targets: targets_granularity(targets)}
