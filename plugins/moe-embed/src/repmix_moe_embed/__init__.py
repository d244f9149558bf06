"""repmix-moe-embed: Contrastive Learning + Mixture of Experts (moe-embed).

Components (entry points):

* ``moe-embed.domain-tokenizer``: a Hugging Face tokenizer that also reads a domain tag
  per item and adds a ``domain`` tensor [B] (expert index) to the batch;
* ``moe-embed.moe-transformer``: a pretrained BERT-family encoder whose feed-forward
  blocks are turned into one expert per declared domain (copies of the pretrained block),
  each example routed to its domain's expert (enforced routing, no router).

Train with std's ``mnrl`` loss (sentence-transformers' MultipleNegativesRankingLoss).
"""

from __future__ import annotations

CITATION = (
    "Hallee, Kapur, Patel, Gleghorn & Khomtchouk (2024). Contrastive Learning and Mixture of "
    "Experts Enables Precise Vector Embeddings. arXiv:2401.15713 (Scientific Reports, 2025). "
    "Code: github.com/Gleghorn-Lab/Mixture-of-Experts-Sentence-Similarity"
)

__all__ = ["CITATION"]
