"""Token Recycling (Luo et al., ACL 2025) for repmix: training-free, greedy-lossless speculative decoding.

Components: ``token-recycling`` (decoding strategy) and ``recycling-speedup`` (evaluator: tokens/s and mean
accepted tokens per step against greedy, with outputs compared). Building blocks:
:class:`~repmix_token_recycling.tree.DraftTree` (static templates "2.2.2" and "small"),
:class:`~repmix_token_recycling.adjacency.AdjacencyMatrix` (V×k candidates) and the verifiers of
:mod:`repmix_token_recycling.verify` (tree attention on std.hf-lm; path-by-path on any CausalLM).
"""

from repmix_token_recycling.adjacency import AdjacencyMatrix
from repmix_token_recycling.decoding import TokenRecycling, best_path
from repmix_token_recycling.tree import (
    TEMPLATE_2_2_2,
    TEMPLATE_SMALL,
    TEMPLATES,
    DraftTree,
    TreeError,
)

__all__ = [
    "TEMPLATES",
    "TEMPLATE_2_2_2",
    "TEMPLATE_SMALL",
    "AdjacencyMatrix",
    "DraftTree",
    "TokenRecycling",
    "TreeError",
    "best_path",
]
