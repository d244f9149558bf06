"""repmix-binary-pv: binary paragraph vectors (Grzegorczyk & Kurdziel 2017; Grzegorczyk's thesis, arXiv:1901.01695).

Components (entry points):

* ``binary-pv.binary-code`` (pooler): ``c = round(σ(W x + b))`` ∈ {0, 1}^bits with a straight-through
  gradient (``∂L/∂z = σ'(z) · ∂L/∂c``), optionally with additive noise before the sigmoid in training;
* ``binary-pv.hamming`` (aligner): minus the Hamming distance of two codes, computed as the ±1
  inner-product identity ``ham = (b − <s1, s2>) / 2`` with ``s = 2c − 1`` (differentiable), or the
  agreement ``<s1, s2> / b`` ∈ [−1, 1] for contrastive training;

and :mod:`repmix_binary_pv.search`: codes packed into bits and ranked by popcount Hamming distance.
"""

from __future__ import annotations

CITATION = (
    "Grzegorczyk & Kurdziel (2017). Binary Paragraph Vectors. RepL4NLP@ACL 2017. arXiv:1611.01116; "
    "Grzegorczyk (2019). Vector representations of text data in deep learning. PhD thesis, arXiv:1901.01695."
)

__version__ = "1.0.0"
__all__ = ["CITATION"]
