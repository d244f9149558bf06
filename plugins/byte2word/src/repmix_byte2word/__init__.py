"""Byte2Word (Lee, Guo, Qiu 2022, arXiv 2211.12677) for repmix: word embeddings built from bytes.

* ``byte2word-lm`` (encoder): latent-query cross-attention from each word's bytes to one word
  vector (about 10 % of the parameters of the sub-word embedding table it replaces), a
  causal backbone over words and an intra-word byte decoder; a :class:`repmix.sdk.CausalLM`
  predicting the next byte. Its words come from the tower's tokenizer
  (``learn-your-tokens.word-bytes``: whitespace, punctuation or SMILES words).
"""

from repmix_byte2word.embedder import ByteToWordEmbedder, parameter_count

__all__ = ["ByteToWordEmbedder", "parameter_count"]
