"""repmix-vse: Deep Learning Applied to Image and Text Matching (Baqapuri, 2015) for repmix.

Components (entry points; nothing is imported until a config names one):

* ``vse-ngrams`` (tokenizer): hashed word / character n-grams with counts;
* ``vse-mlp`` (encoder): bag-of-n-grams -> MLP -> one pooled vector;
* ``vse-hinge`` (loss): bidirectional hinge ranking loss over in-batch negatives
  (sum over negatives as in Karpathy 2014 / VSE, or the hardest negative as in VSE++).
"""

__version__ = "1.0.0"
