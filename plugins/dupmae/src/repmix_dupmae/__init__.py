"""repmix-dupmae: RetroMAE v2 / DupMAE (Xiao & Liu; arXiv:2211.08769, ACL 2023 2305.02564).

Components (entry points, imported only when a config names them):

* encoder ``dupmae.encoder`` (:class:`~repmix_dupmae.encoder.DupMAEEncoder`): a Hugging Face
  BERT with an MLM head tied to its word embeddings and RetroMAE's one-layer "enhanced"
  decoder; in training mode it whole-word masks its own input (the encoder side of DupMAE);
  it provides ``token`` states and ``vocab`` logits (the MLM head over every position);
* pooler ``dupmae.ot``: the ordinary-token (OT) vector, max over positions >= 1 of the logits;
* pooler ``dupmae.unified``: [CLS] ⊕ reduced OT vector (reduction configurable: top-k or linear);
* loss ``dupmae.duplex``: L_dec (CLS-conditioned reconstruction) + 0.1·L_bow + L_enc (MLM).
"""

__version__ = "1.0.0"

CITATION = (
    "Xiao & Liu (2023). RetroMAE-2: Duplex Masked Auto-Encoder For Pre-Training Retrieval-Oriented Language "
    "Models. ACL 2023 (arXiv:2305.02564; earlier arXiv:2211.08769). Code: github.com/staoxiao/RetroMAE "
    "(src/pretrain/modeling_duplex.py, data.py)."
)
