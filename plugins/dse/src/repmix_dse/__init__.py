"""repmix-dse: Distilled Sentence Embedding (Barkan et al., AAAI 2020).

Components (entry points):

* ``dse.top-layers-mean`` (pooler): mean over tokens (position 0 excluded) of the
  concatenated top-k layers' states, a k·d vector;
* ``dse.pair-head`` (aligner): ``[u; v; u∘v; |u−v|]`` -> Linear -> ReLU -> Linear(1) for every pair;
* ``dse.dse-distill`` (loss): ``(1−α)·L_task(y_pred, y) + α·mean_b (y_pred − z)²``;
* ``dse.distill-pairs`` (dataset): sentence pairs with the task label y and the teacher's
  score z per pair, from a teacher scores file or a repmix teacher model.
"""

from __future__ import annotations

CITATION = (
    "Barkan, Razin, Malkiel, Katz, Caciularu & Koenigstein (2020). Scalable Attentive Sentence-Pair "
    "Modeling via Distilled Sentence Embedding. AAAI 2020. arXiv:1908.05161. "
    "Code: github.com/microsoft/Distilled-Sentence-Embedding"
)

__all__ = ["CITATION"]
