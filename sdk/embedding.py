"""A token-embedding table sized by the tower's tokenizer (vocabulary and padding id), for encoders trained from scratch."""

from __future__ import annotations

from typing import Any

from repmix.core.errors import ConfigError
from torch import nn


def token_embedding(tokenizer: Any, dim: int, component: str) -> nn.Embedding:
    """``nn.Embedding(vocab_size, dim)`` with the tokenizer's padding id as ``padding_idx``.

    The tokenizer arrives as ``Runtime.tokenizer``; it must expose ``vocab_size``
    and may expose ``pad_token_id`` (or ``pad_id``). ``component`` names the
    encoder in the error when the tokenizer declares no vocabulary.
    """
    vocab = getattr(tokenizer, "vocab_size", None)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise ConfigError(
            f"{component} needs a tokenizer with a vocab_size (e.g. std.hf-tokenizer)",
            hint="give the tower a tokenizer: {type: std.hf-tokenizer, model: ...}",
        )
    pad = getattr(tokenizer, "pad_token_id", getattr(tokenizer, "pad_id", None))
    return nn.Embedding(vocab, dim, padding_idx=pad if isinstance(pad, int) and not isinstance(pad, bool) else None)
