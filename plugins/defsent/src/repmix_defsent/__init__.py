"""repmix-defsent: DefSent+ (Liu, 2024; after DefSent, Tsukagoshi et al., ACL 2021).

Components (entry points):

* ``defsent.defsent`` (loss): classify a definition's sentence embedding to its dictionary entry
  with a softmax over the **entry matrix**, ``logits = s · Eᵀ`` (cosine / τ by default), where each
  entry vector is the mean of the pooled embeddings of the entry's definitions, computed by a
  frozen snapshot of the model (no gradient reaches E) and optionally rebuilt every N steps
  (progressive rebuilding, DefSent+'s PST as far as it is specified);
* ``defsent.definitions`` (dataset): (definition, headword) pairs with the entry index as target,
  from Princeton WordNet 3.0 (a packaged subset, a WordNet ``dict/`` folder) or a TSV of your own.

Poolers: DefSent pools with CLS, mean or max, which ``std`` provides.
:func:`repmix_defsent.entries.isotropy` reports the entry matrix's mean pairwise cosine.
"""

from __future__ import annotations

CITATION = (
    "Liu (2024). DefSent+: Improving sentence embeddings of language models by projecting definition sentences "
    "into a quasi-isotropic or isotropic vector space of unlimited dictionary entries. arXiv:2405.16153. "
    "After Tsukagoshi, Sasano & Takeda (2021). DefSent: Sentence Embeddings using Definition Sentences. ACL 2021."
)

__version__ = "1.0.0"
__all__ = ["CITATION"]
