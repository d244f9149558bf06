"""repmix-vdr: VDR, vocabulary-disentangled retrieval (Zhou et al., ICLR 2024).

Components (entry points):

* ``vdr.vdr-transformer`` (encoder): a Hugging Face BERT whose token states go through a new
  LayerNorm and are projected onto the model's own word-embedding matrix (rows from
  ``shift`` on), ``V_t = ELU(LN(h_t) E'^T) + 1``; granularities ``token`` [B, L, d], ``vocab``
  [B, L, V'] and ``bow`` [B, V'] (the input's binary bag of words);
* ``vdr.vocab-max`` (pooler): max over the real tokens of ``vocab``, optionally sparsified to
  its top k entries, OR'd with the bag of words;
* ``vdr.sparse-dot`` (aligner): dot product of vocabulary vectors (optionally top-k
  sparsified first), with :func:`repmix_vdr.aligners.explain` naming the shared words;
* ``vdr.vdr-nll`` (loss): ``½[L_sym(q_topk, p) + L_sym(q_bow, p)]`` with
  ``L_sym = ½(CE_rows + CE_cols)`` (``semi: true``: the four-term variant).

:mod:`repmix_vdr.index` holds an inverted index over sparse vocabulary vectors.
"""

from __future__ import annotations

CITATION = (
    "Zhou, Li, Liu, Tao, Yu & Sun (2024). Retrieval-based Disentangled Representation Learning with "
    "Natural Language Supervision (VDR). ICLR 2024. Code: github.com/jzhoubu/VDR"
)

__version__ = "1.0.0"
__all__ = ["CITATION"]
