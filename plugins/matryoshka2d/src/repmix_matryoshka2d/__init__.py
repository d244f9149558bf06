"""repmix-matryoshka2d: 2D Matryoshka Sentence Embeddings (Li et al., 2024) for repmix.

Components (entry points, imported only when a config names them):

* loss ``matryoshka2d`` (:class:`~repmix_matryoshka2d.loss.Matryoshka2dLoss`): wraps any
  base loss declared in YAML and applies it over truncated dimensions, at the last layer
  and at sampled shallower layers, plus a KL term pulling shallow layers to the last one;
* pooler ``matryoshka2d.truncate`` (:class:`~repmix_matryoshka2d.poolers.TruncatePooler`):
  the sentence embedding of hidden-state layer L truncated to d dims;
* encoder ``matryoshka2d.early-exit`` (:class:`~repmix_matryoshka2d.encoder.EarlyExitTransformer`):
  a Hugging Face transformer that runs only its first ``exit_layer`` blocks;
* evaluator ``matryoshka2d.sts-grid`` (:class:`~repmix_matryoshka2d.evaluator.StsGridEvaluator`):
  STS Spearman for every (layer, dim); ``repmix matryoshka2d-grid`` draws it as a heat-map.
"""

__version__ = "1.0.0"

CITATION = (
    "Li, Li, Li, Xie & Li (2024). 2D Matryoshka Sentence Embeddings (later ESE / Espresso Sentence "
    "Embeddings). arXiv:2402.14776."
)
