"""Lexinvariant language models (Huang et al., NeurIPS 2023) for repmix.

* ``lexinvariant.lexinvariant`` — a causal LM whose token embeddings are random Gaussian vectors
  drawn per sequence (tied output), exactly equivariant to vocabulary permutations;
* ``lexinvariant.position-nll`` — mean next-token loss by position in the context (the in-context
  deciphering curve), optionally under a seeded substitution cipher of the vocabulary.
"""
