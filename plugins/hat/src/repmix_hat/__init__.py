"""Hierarchical Autoregressive Transformers (HAT, Neitemeier et al., ICLR 2025) for repmix.

* :mod:`repmix_hat.splitter` — the HAT splitting rule (text) and the SMILES atom rule, offline
  (``split``, ``split_with_limit``) and online (``Segmenter``: prefix-stable, for causal models);
* ``hat.hat-tokenizer`` — UTF-8 bytes with the splitting rule attached;
* ``hat.hat`` — byte encoder -> latent-query word pooling -> causal word backbone -> byte decoder,
  a causal next-byte language model (:class:`repmix.sdk.CausalLM`).
"""

from repmix_hat.splitter import Segmenter, split, split_with_limit

__all__ = ["Segmenter", "split", "split_with_limit"]
