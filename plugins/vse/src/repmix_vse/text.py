"""Hashed n-gram tokenizer and bag-of-n-grams MLP encoder (the thesis' BoW / n-gram text models).

The thesis represents a sentence as a sparse bag of words (BoW) or of word
n-grams (bi-, tri-grams, tri-grams with skips) and maps it with an MLP into the
shared space. Here the vocabulary is hashed (``buckets`` rows, no fitted
dictionary, so the tokenizer needs no training pass and handles any string);
``analyzer: char`` takes character n-grams instead, which turns a SMILES
string into a bag of substrings: a cheap molecule tower for text ↔ SMILES
retrieval.

The sparse vector times the first weight matrix is computed as an
``nn.EmbeddingBag`` sum over the item's n-gram ids weighted by their counts,
which is exactly ``x @ W`` for the sparse ``x`` without materialising it.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Runtime,
    Tokenizer,
)
from torch import Tensor, nn

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def hash_ngram(gram: str, n: int, buckets: int) -> int:
    """Stable bucket of an n-gram (CRC-32 of ``"<n>\\x1f<gram>"``; the same in every process)."""
    return zlib.crc32(f"{n}\x1f{gram}".encode()) % buckets


def extract_ngrams(
    text: str, analyzer: Literal["word", "char"], ngram_range: tuple[int, int], skip_grams: bool, lowercase: bool
) -> list[tuple[int, str]]:
    """All (n, gram) of ``text``: word n-grams (joined by spaces) or character n-grams.

    ``skip_grams`` (word analyzer) adds 1-skip bigrams ``"w1 _ w3"`` (the thesis'
    "tri+skip" features), recorded with n = 0 so they hash apart from bigrams.
    """
    if lowercase:
        text = text.lower()
    lo, hi = ngram_range
    units: list[str] = _WORD.findall(text) if analyzer == "word" else list(text)
    sep = " " if analyzer == "word" else ""
    out: list[tuple[int, str]] = []
    for n in range(lo, hi + 1):
        for i in range(len(units) - n + 1):
            out.append((n, sep.join(units[i : i + n])))
    if skip_grams and analyzer == "word":
        out.extend((0, f"{units[i]} _ {units[i + 2]}") for i in range(len(units) - 2))
    return out


class HashedNgramTokenizer(Tokenizer):
    """Strings -> hashed bags of word or character n-grams with counts.

    Batch: ``input_ids`` [B, L] (bucket ids, distinct per item, sorted),
    ``weights`` [B, L] (counts; 1 with ``binary``) and ``attention_mask`` [B, L]
    (bool), right-padded with id 0 / weight 0. ``vocab_size`` = ``buckets``.
    """

    citation: ClassVar[str] = (
        "Baqapuri (2015). Deep Learning Applied to Image and Text Matching. arXiv:1601.03478 (BoW and n-gram "
        "text features). Weinberger et al. (2009). Feature Hashing for Large Scale Multitask Learning. ICML."
    )

    class Config(ComponentConfig):
        """Options of ``vse-ngrams``."""

        analyzer: Literal["word", "char"] = Field(
            "word", description="word n-grams (text) or character n-grams (e.g. SMILES)"
        )
        ngram_range: tuple[int, int] = Field(
            (1, 1), description="[min_n, max_n]: [1, 1] is a bag of words, [1, 3] uni- to tri-grams"
        )
        skip_grams: bool = Field(False, description="word analyzer: also 1-skip bigrams (the thesis' tri+skip)")
        buckets: int = Field(2**18, ge=2, description="hash buckets = vocabulary size of the encoder")
        lowercase: bool = Field(True, description="lowercase first (set false for SMILES: c and C differ)")
        binary: bool = Field(False, description="presence (1) instead of counts")
        max_length: int | None = Field(
            None, ge=1, description="keep at most this many units (words or characters) of each item"
        )

        @model_validator(mode="after")
        def _check(self) -> HashedNgramTokenizer.Config:
            lo, hi = self.ngram_range
            if lo < 1 or hi < lo:
                raise ValueError(f"ngram_range needs 1 <= min_n <= max_n, got [{lo}, {hi}]")
            if self.skip_grams and self.analyzer != "word":
                raise ValueError("skip_grams applies to the word analyzer only")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.vocab_size = config.buckets
        self.pad_token_id = 0

    def bag(self, text: str) -> Counter[int]:
        """Bucket id -> count of one item."""
        c = self.config
        if c.max_length is not None:
            text = " ".join(_WORD.findall(text)[: c.max_length]) if c.analyzer == "word" else text[: c.max_length]
        grams = extract_ngrams(text, c.analyzer, c.ngram_range, c.skip_grams, c.lowercase)
        return Counter(hash_ngram(g, n, c.buckets) for n, g in grams)

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Tokenize a batch into padded (ids, weights, mask)."""
        bags = [self.bag(str(item)) for item in items]
        width = max([1, *(len(b) for b in bags)])
        ids = torch.zeros(len(bags), width, dtype=torch.long)
        weights = torch.zeros(len(bags), width, dtype=torch.float32)
        mask = torch.zeros(len(bags), width, dtype=torch.bool)
        for i, b in enumerate(bags):
            keys = sorted(b)
            if not keys:
                continue
            ids[i, : len(keys)] = torch.tensor(keys, dtype=torch.long)
            weights[i, : len(keys)] = torch.tensor(
                [1.0 if self.config.binary else float(b[k]) for k in keys], dtype=torch.float32
            )
            mask[i, : len(keys)] = True
        return {"input_ids": ids, "weights": weights, "attention_mask": mask}


class NgramMLPEncoder(Encoder):
    """Bag of (hashed) n-grams -> MLP -> one pooled vector (the thesis' BoW-MLP / n-gram-MLP text model).

    ``h_0 = x / ||x||`` (with ``normalize_input``), ``h_{i+1} = act(h_i W_i + b_i)``
    for the ``hidden`` layers, then a linear layer to ``dim``. Provides one pooled
    granularity (``granularity``, default ``sentence``). The vocabulary size comes
    from ``runtime.tokenizer.vocab_size`` (``vse-ngrams``: ``buckets``).
    """

    citation: ClassVar[str] = (
        "Baqapuri (2015). Deep Learning Applied to Image and Text Matching. EPFL MSc thesis, arXiv:1601.03478."
    )

    class Config(ComponentConfig):
        """Options of ``vse-mlp``."""

        dim: int = Field(256, ge=1, description="output (shared space) dimension")
        hidden: list[int] = Field(
            default_factory=lambda: [512], description="hidden layer sizes ([] = one linear map, as a linear BoW)"
        )
        activation: Literal["relu", "tanh"] = Field("relu", description="activation between layers")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden activation")
        normalize_input: bool = Field(True, description="L2-normalise each item's n-gram count vector")
        granularity: str = Field("sentence", min_length=1, description="name of the provided pooled granularity")

        @model_validator(mode="after")
        def _check(self) -> NgramMLPEncoder.Config:
            if any(h < 1 for h in self.hidden):
                raise ValueError(f"hidden layer sizes must be >= 1, got {self.hidden}")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        vocab = getattr(runtime.tokenizer, "vocab_size", None)
        if not isinstance(vocab, int) or vocab < 1:
            raise ConfigError(
                "vse-mlp needs a tokenizer with a vocab_size (e.g. vse-ngrams)",
                hint="use tokenizer: {type: vse-ngrams, ...}",
            )
        sizes = [*config.hidden, config.dim]
        self.embed = nn.EmbeddingBag(vocab, sizes[0], mode="sum")
        self.bias = nn.Parameter(torch.zeros(sizes[0]))
        nn.init.normal_(self.embed.weight, std=sizes[0] ** -0.5)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.act = nn.ReLU() if config.activation == "relu" else nn.Tanh()
        self.drop = nn.Dropout(config.dropout)

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """One pooled granularity of width ``dim``; no per-layer states."""
        return EncoderSignature({config.granularity: GranularitySpec("pooled", config.dim)}, num_layers=None)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode a ``vse-ngrams`` batch into ``{granularity: [B, dim]}``."""
        ids, weights, mask = batch["input_ids"], batch["weights"].float(), batch["attention_mask"].bool()
        weights = weights * mask
        if self.config.normalize_input:
            weights = weights / weights.norm(dim=1, keepdim=True).clamp(min=1e-12)
        h = self.embed(ids, per_sample_weights=weights.to(self.embed.weight.dtype)) + self.bias
        for layer in self.layers:
            h = layer(self.drop(self.act(h)))
        return Encoded({self.config.granularity: Granularity(h)})
