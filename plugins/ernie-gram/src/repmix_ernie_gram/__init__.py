"""ERNIE-Gram for repmix: explicitly n-gram masked language modelling (Xiao et al., NAACL 2021).

* ``ernie-gram.ngram-mask`` (corruptor): a T-test n-gram lexicon extracted from a corpus,
  maximum-matching n-gram boundaries, each chosen n-gram collapsed to one ``[MASK]``
  (``L′ = L − Σ(n − 1)``), joint-vocabulary targets; holds the n-gram output embeddings ``W_N``;
* ``ernie-gram.ngram-mlm`` (loss): cross-entropy over ``⟨V_F, V_N⟩`` at the masked positions.

The encoder is unchanged (``std.hf-lm`` with a masked head).
"""

__version__ = "1.0.0"
