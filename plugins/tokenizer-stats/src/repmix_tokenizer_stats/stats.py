"""Per-tokenizer statistics on a corpus (Needle Threading: token counts are not comparable across tokenizers).

Works with any repmix tokenizer. Token ids of a text are taken, in this order, from

1. ``tokenizer.encode_plain(text)`` (the LM API of std's ``lm-tokenizer``): no special tokens,
   no truncation;
2. ``tokenizer.hf(text, add_special_tokens=False)`` when the tokenizer wraps a Hugging Face one
   (std's ``hf-tokenizer``): no special tokens, no truncation;
3. otherwise the tokenizer's batch for ``[text]``: the real positions of ``attention_mask``,
   minus ``special_tokens_mask`` when present. Such a tokenizer may truncate; the count is then
   a lower bound, and ``truncated_documents`` counts documents whose tokens fill ``max_length``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counts:
    """Token ids of every document, and what the tokenizer told about fallbacks."""

    ids: list[list[int]]
    unk_id: int | None = None
    single_byte: set[int] = field(default_factory=set)
    source: str = "batch"
    truncated: int = 0


def token_ids(tokenizer: Any, texts: Sequence[str]) -> Counts:
    """Token ids of each text without special tokens (see the module docs for the sources)."""
    hf = getattr(tokenizer, "hf", None)
    if callable(getattr(tokenizer, "encode_plain", None)):
        ids = [list(tokenizer.encode_plain(t)) for t in texts]
        source = "encode_plain"
    elif hf is not None and callable(hf):
        ids = [list(hf(t, add_special_tokens=False, truncation=False)["input_ids"]) for t in texts]
        source = "hf"
    else:
        ids = []
        source = "batch"
    truncated = 0
    if source == "batch":
        limit = getattr(tokenizer, "max_length", None) or getattr(getattr(tokenizer, "config", None), "max_length", None)
        for t in texts:
            batch = tokenizer([t])
            row = batch["input_ids"][0]
            mask = batch.get("attention_mask")
            keep = mask[0].bool() if mask is not None else row == row
            special = batch.get("special_tokens_mask")
            if special is not None:
                keep = keep & ~special[0].bool()
            ids.append([int(x) for x in row[keep].tolist()])
            if isinstance(limit, int) and int(keep.sum()) >= limit - 2:
                truncated += 1
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None and hf is not None:
        unk = getattr(hf, "unk_token_id", None)
    single: set[int] = set()
    token_bytes = getattr(tokenizer, "token_bytes", None)
    if callable(token_bytes):
        seen = {i for row in ids for i in row}
        try:
            single = {i for i in seen if len(token_bytes(i)) == 1}
        except Exception:  # noqa: BLE001 - a tokenizer's broken token_bytes only costs this statistic
            single = set()
    return Counts(ids, unk, single, source, truncated)


def words(text: str) -> int:
    """Whitespace words of ``text``."""
    return len(text.split())


def corpus_stats(counts: Counts, texts: Sequence[str], max_tokens: int) -> dict[str, float]:
    """Characters, bytes and words per token, fallbacks and the context limit in characters."""
    n_tok = sum(len(r) for r in counts.ids)
    n_chars = sum(len(t) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_words = sum(words(t) for t in texts)
    flat = [i for r in counts.ids for i in r]
    cpt = n_chars / n_tok if n_tok else float("nan")
    out = {
        "tokens": float(n_tok),
        "chars_per_token": cpt,
        "bytes_per_token": n_bytes / n_tok if n_tok else float("nan"),
        "tokens_per_1k_chars": 1000.0 * n_tok / n_chars if n_chars else float("nan"),
        "fertility": n_tok / n_words if n_words else float("nan"),
        "unk_share": (sum(1 for i in flat if i == counts.unk_id) / n_tok) if (n_tok and counts.unk_id is not None) else 0.0,
        "context_chars": max_tokens * cpt,
    }
    if counts.single_byte:
        out["single_byte_share"] = sum(1 for i in flat if i in counts.single_byte) / n_tok if n_tok else 0.0
    if counts.truncated:
        out["truncated_documents"] = float(counts.truncated)
    return out


def unigram_bits_per_char(counts: Counts, texts: Sequence[str], vocab_size: int | None) -> float:
    """Held-out bits per character of a token-unigram model: fit on even documents, score odd ones.

    Add-0.5 smoothing over ``vocab_size`` (or the types seen). With one document, it is split in
    halves by its tokens. The Rajaraman et al. diagnostic on a real corpus.
    """
    train_ids = [i for k, r in enumerate(counts.ids) if k % 2 == 0 for i in r]
    test_rows = [(r, t) for k, (r, t) in enumerate(zip(counts.ids, texts)) if k % 2 == 1]
    if not test_rows:
        return float("nan")
    test_ids = [i for r, _ in test_rows for i in r]
    test_chars = sum(len(t) for _, t in test_rows)
    c = Counter(train_ids)
    types = vocab_size if vocab_size else len(set(c) | set(test_ids))
    total = len(train_ids) + 0.5 * types
    bits = -sum(math.log2((c[i] + 0.5) / total) for i in test_ids)
    return bits / max(test_chars, 1)


def char_unigram_bits_per_char(texts: Sequence[str]) -> float:
    """The character-unigram baseline of :func:`unigram_bits_per_char` (same even/odd split)."""
    from repmix_tokenizer_stats.markov import char_unigram_bits

    train = "".join(t for k, t in enumerate(texts) if k % 2 == 0)
    test = "".join(t for k, t in enumerate(texts) if k % 2 == 1)
    return char_unigram_bits(train, test) if test else float("nan")
