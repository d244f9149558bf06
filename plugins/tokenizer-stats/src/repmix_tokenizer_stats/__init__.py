"""repmix-tokenizer-stats: tokenizer diagnostics (Needle Threading's finding) and the Markov-source diagnostic."""

from repmix_tokenizer_stats.markov import (
    binary_entropy,
    bpe_encode,
    char_unigram_bits,
    diagnostic,
    entropy_rate,
    sample_chain,
    stationary,
    token_unigram_bits_per_char,
    train_bpe,
    unigram_entropy,
)

__all__ = [
    "binary_entropy",
    "bpe_encode",
    "char_unigram_bits",
    "diagnostic",
    "entropy_rate",
    "sample_chain",
    "stationary",
    "token_unigram_bits_per_char",
    "train_bpe",
    "unigram_entropy",
]
