"""Unified Embedding (feature multiplexing): ``unified-features`` (tokenizer) and ``unified-embedding`` (encoder).

Every feature f gets k_f chunks; chunk c of value x is row ``h_{f,c}(x) mod M`` of one shared table
(or of table ``slot mod num_tables``), where h is BLAKE2b-64 salted with ``[feature index, chunk]``:
stable across processes and machines (never Python's ``hash()``). A multivalent feature (a bag of
n-grams) sums (or averages) its values' rows. The feature embedding is the concatenation of its
chunks, emb_f(x) = concat_c T[h_{f,c}(x)], and the item's embedding concatenates all features
(``sentence``, optionally projected to ``dim``). The table holds num_tables x M x d parameters
whatever the number of features.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    Tokenizer,
)
from torch import Tensor, nn

CITATION = (
    "Coleman, Kang, Fahrbach, Wang, Hong, Mirrokni & Cheng (2023). Unified Embedding: Battle-Tested Feature "
    "Representations for Web-Scale ML Systems. NeurIPS 2023."
)
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def feature_hash(value: str, feature: int, chunk: int, buckets: int) -> int:
    """h_{f,c}(value) mod buckets: BLAKE2b (8 bytes) of the value, salted with (feature, chunk)."""
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8, salt=struct.pack("<QQ", feature, chunk)).digest()
    return int.from_bytes(digest, "little") % buckets


class FeatureSpec(BaseModel):
    """One feature: where its values come from and how many chunks it gets."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="feature name")
    extract: Literal["word", "char", "value"] = Field(
        "value", description="word / char n-grams of a text, or the value(s) of a field as categories"
    )
    n: int = Field(1, ge=1, description="n-gram size (word, char)")
    field: str | None = Field(None, description="key of a dict item to read (default: value -> name; n-grams -> the item string)")
    chunks: int = Field(1, ge=1, description="k_f: salted lookups concatenated (embedding width k_f * d)")
    lowercase: bool = Field(True, description="lowercase text before extracting n-grams")


class UnifiedFeatureTokenizer(Tokenizer):
    """Items (strings, or dicts of fields) -> hashed bucket ids per (feature, chunk) slot.

    Batch: ``input_ids`` [B, S, L] (S = sum of chunks, L = most values of a feature in the batch)
    and ``attention_mask`` [B, S, L] (bool).
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``unified-features``."""

        features: list[FeatureSpec] = Field(
            default_factory=lambda: [FeatureSpec(name="words", extract="word"), FeatureSpec(name="char3", extract="char", n=3)],
            min_length=1, description="the features, in order (their index salts the hash)",
        )
        buckets: int = Field(4096, ge=2, description="M: rows of the shared table")
        max_values: int = Field(512, ge=1, description="keep at most this many values of a feature per item")

        @model_validator(mode="after")
        def _unique(self) -> UnifiedFeatureTokenizer.Config:
            names = [f.name for f in self.features]
            if len(set(names)) != len(names):
                raise ValueError(f"feature names must be unique, got {names}")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.buckets = config.buckets
        self.vocab_size = config.buckets
        self.slots = [(f, c) for f, spec in enumerate(config.features) for c in range(spec.chunks)]

    def values(self, item: Any, spec: FeatureSpec) -> list[str]:
        """The values of one feature of one item."""
        if isinstance(item, Mapping):
            key = spec.field or spec.name
            if key not in item:
                if spec.extract == "value":
                    return []
                raise InputError(f"item has no field {key!r} for feature {spec.name!r}")
            src = item[key]
        else:
            src = item
        if spec.extract == "value":
            vals = src if isinstance(src, (list, tuple)) else [src]
            return [str(v) for v in vals][: self.config.max_values]
        text = str(src).lower() if spec.lowercase else str(src)
        units = _WORD.findall(text) if spec.extract == "word" else list(text)
        sep = " " if spec.extract == "word" else ""
        return [sep.join(units[i : i + spec.n]) for i in range(len(units) - spec.n + 1)][: self.config.max_values]

    def check_item(self, item: Any) -> str | None:
        if isinstance(item, Mapping):
            return None
        if not isinstance(item, str):
            return f"expected a string or a dict of fields, got {type(item).__name__}"
        if not item.strip():
            return "an empty string has no features"
        return None

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        if not items:
            raise InputError("unified-features: cannot tokenize an empty batch")
        per_item = []
        for i, item in enumerate(items):
            why = self.check_item(item)
            if why:
                raise InputError(f"unified-features: item {i}: {why}")
            per_item.append([self.values(item, spec) for spec in self.config.features])
        width = max([1, *(len(v) for vals in per_item for v in vals)])
        ids = torch.zeros(len(items), len(self.slots), width, dtype=torch.long)
        mask = torch.zeros(len(items), len(self.slots), width, dtype=torch.bool)
        for b, vals in enumerate(per_item):
            for s, (f, c) in enumerate(self.slots):
                v = vals[f]
                if v:
                    ids[b, s, : len(v)] = torch.tensor([feature_hash(x, f, c, self.buckets) for x in v])
                    mask[b, s, : len(v)] = True
        return {"input_ids": ids, "attention_mask": mask}

    def sort_key(self, item: Any) -> int:
        return len(item) if isinstance(item, str) else 0


class UnifiedEmbeddingEncoder(Encoder):
    """The shared hashed table: ``token`` = one vector per (feature, chunk) slot, ``sentence`` = their concatenation."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``unified-embedding``."""

        dim: int = Field(16, ge=1, description="d: width of a table row (a chunk)")
        num_tables: int = Field(1, ge=1, description="tables; slot s uses table s mod num_tables")
        combiner: Literal["sum", "mean"] = Field("mean", description="how a multivalent feature combines its values' rows")
        output_dim: int | None = Field(None, ge=1, description="project the concatenation to this width (null: none)")

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", config.dim),
                                 "sentence": GranularitySpec("pooled", config.output_dim)}, num_layers=None)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        buckets, slots = getattr(tok, "buckets", None), getattr(tok, "slots", None)
        if not isinstance(buckets, int) or slots is None:
            raise ConfigError("unified-embedding needs the unified-features tokenizer", hint="tokenizer: {type: unified-features}")
        self.num_slots = len(slots)
        self.tables = nn.Parameter(torch.randn(config.num_tables, buckets, config.dim) * config.dim ** -0.5)
        self.register_buffer("slot_table", torch.arange(self.num_slots) % config.num_tables, persistent=False)
        self.proj = nn.Linear(self.num_slots * config.dim, config.output_dim) if config.output_dim else None

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        rows = self.tables[self.slot_table.view(1, -1, 1).expand_as(ids), ids]  # [B, S, L, d]
        rows = rows * mask.unsqueeze(-1)
        summed = rows.sum(2)
        if self.config.combiner == "mean":
            summed = summed / mask.sum(2, keepdim=True).clamp(min=1)
        slot_mask = mask.any(2)
        flat = summed.flatten(1)
        out = self.proj(flat) if self.proj is not None else flat
        return Encoded({"token": Granularity(summed, slot_mask), "sentence": Granularity(out)})
