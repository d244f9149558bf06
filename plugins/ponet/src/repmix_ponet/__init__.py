"""repmix-ponet: PoNet, "Pooling Network for Efficient Token Mixing in Long Sequences" (Tan et al., ICLR 2022).

One component, the ``ponet`` encoder: a small transformer stack whose
self-attention is replaced by PoNet's multi-granularity pooling (global
attention-pooled vector, segment max pooling, local max pooling), linear in
the sequence length.
"""

__version__ = "1.0.0"
