"""Learn Your Tokens (Thawani et al., EMNLP Findings 2023) for repmix: word-pooled byte language models.

* ``word-bytes`` (tokenizer): UTF-8 bytes with std's byte ids and a left-to-right word rule
  (``whitespace``, ``punctuation`` or ``smiles``) that byte-to-word encoders read;
* ``word-pooled-lm`` (encoder): intra-word CLS encoder -> causal backbone over words -> byte
  canvas decoder; a :class:`repmix.sdk.CausalLM` predicting the next byte.
"""

from repmix_learn_your_tokens.words import (
    SMILES_REGEX,
    row_word_starts,
    split_words,
    word_starts,
)

__all__ = ["SMILES_REGEX", "row_word_starts", "split_words", "word_starts"]
