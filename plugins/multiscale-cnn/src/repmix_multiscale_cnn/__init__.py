"""repmix-multiscale-cnn: the multi-scale CNN sentence encoder of Dongsheng Wang's thesis
"Semantic Representation and Inference for NLP" (University of Copenhagen, 2020; arXiv:2106.08117).

Components: the ``cnn`` encoder (word embeddings -> multi-scale CNN) and the
``cnn-max`` pooler (the same multi-scale CNN over any encoder's token states).
Both compute, for each kernel width k, a Conv1d with F filters, ReLU, and a
masked max over time, concatenated to [B, |K|·F].
"""

__version__ = "1.0.0"
