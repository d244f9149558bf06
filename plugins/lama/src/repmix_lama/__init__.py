"""repmix-lama: "Low Rank Factorization for Compact Multi-Head Self-Attention" (Mehta, Rangwala &
Ramakrishnan, arXiv:1912.00835) as a repmix pooler.

Pooler ``lama`` (:class:`repmix_lama.pooler.LamaPooler`): m attention distributions over the
tokens, each from a rank-one bilinear form between a learned global context vector and the
token state, pooled into an m x d sentence matrix (flattened, or averaged).
"""

__version__ = "1.0.0"
