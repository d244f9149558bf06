"""repmix-xtr: XTR, "Rethinking the Role of Token Retrieval in Multi-Vector Retrieval" (Lee et al., NeurIPS 2023).

One component, the ``xtr`` aligner (sequence x sequence): in training mode the
in-batch top-k token-retrieval objective's scores, in eval mode the inference
scoring (top-k' token retrieval over the whole candidate set through an exact
or faiss index, missing similarities imputed). Put ``std.info-nce`` (or any
cross-entropy loss) on it to train with XTR's objective.
"""

__version__ = "1.0.0"
