"""repmix-babelbert: massively multilingual lexical specialization (BabelBERT; Green, Ponzetto & Glavaš, ACL 2023).

Components (entry points):

* ``babelbert.word-mean`` (pooler): mean over a word's sub-word states, special tokens excluded
  (the word is encoded in isolation, ``[CLS] w [SEP]``);
* ``babelbert.nt-xent`` (loss): label-based NT-Xent (τ = 0.07, cosine), every same-label pair a
  positive with its own softmax over itself and the anchor's negatives, equal to
  pytorch-metric-learning's ``NTXentLoss``;
* ``babelbert.synonym-pairs`` (dataset): pairs of words of one synonym set, labelled by the set
  (WordNet 3.0 synsets: a packaged subset, a WordNet ``dict/`` folder, or a TSV of your own).
"""

from __future__ import annotations

CITATION = (
    "Green, Ponzetto & Glavaš (2023). Massively Multilingual Lexical Specialization of Multilingual "
    "Transformers (BabelBERT). ACL 2023. arXiv:2208.01018. Code: github.com/tommaso-green/babelbert"
)

__version__ = "1.0.0"
__all__ = ["CITATION"]
