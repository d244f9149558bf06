"""repmix-m2-bert: M2-BERT, the Monarch Mixer BERT of "Benchmarking and Building Long-Context Retrieval Models
with LoCo and M2-BERT" (Saad-Falcon, Fu, Arora, Guha and Ré, 2024).

One component, the ``m2-bert`` encoder: BERT layers whose attention is a gated,
bidirectional implicit long convolution computed by FFT (O(T log T)) and whose
MLP is a GLU with block-diagonal (Monarch) matrices. Building blocks are in
:mod:`repmix_m2_bert.mixer`.
"""

__version__ = "1.0.0"
