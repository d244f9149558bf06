"""repmix-exact-byte-probs: exact byte-level probabilities from tokenized LMs (the Byte-Token Representation Lemma)."""

from repmix_exact_byte_probs.btr import (
    END,
    OTHER,
    ByteLM,
    CachedLM,
    TokenLM,
    canonical_prefix_check,
    max_prefix_encode,
    naive_next_byte,
)

__all__ = ["END", "OTHER", "ByteLM", "CachedLM", "TokenLM", "canonical_prefix_check", "max_prefix_encode", "naive_next_byte"]
