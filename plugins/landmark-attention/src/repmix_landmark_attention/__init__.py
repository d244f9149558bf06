"""Landmark Attention (Mohtashami & Jaggi, NeurIPS 2023) for repmix.

Components: ``landmark-lm`` (causal LM encoder with landmark tokens, grouped softmax and top-k block
retrieval at inference), ``passkey`` (training documents of the pass-key task) and
``passkey-retrieval`` (greedy pass-key accuracy per filler length and retrieval setting). Building
blocks: :func:`~repmix_landmark_attention.attention.landmark_grouped_softmax` and
:class:`~repmix_landmark_attention.model.LandmarkTransformer`.
"""

from repmix_landmark_attention.attention import Rotary, landmark_grouped_softmax
from repmix_landmark_attention.model import (
    LandmarkCache,
    LandmarkTransformer,
    stream_layout,
)
from repmix_landmark_attention.passkey import make_prompt, read_key, training_text

__all__ = [
    "LandmarkCache",
    "LandmarkTransformer",
    "Rotary",
    "landmark_grouped_softmax",
    "make_prompt",
    "read_key",
    "stream_layout",
    "training_text",
]
