"""The adjacency matrix M ∈ V×k of Token Recycling: the k most probable next tokens of every token.

As in the official code, M starts at zeros (every candidate is token 0), is read by a BFS along
the draft tree starting from the last accepted token, and after every verification pass the row
of every token in the tree is overwritten with the top-k of the logits at that token's position
(accepted and rejected positions alike: the "recycled" candidates). A token that occurs several
times in one tree keeps the candidates of its last occurrence. Stored as int64 numpy (V·k·8 bytes;
the official code's int64 tensor), kept outside torch so that inference mode never freezes it.
"""

from __future__ import annotations

import numpy as np
import torch

from repmix_token_recycling.tree import DraftTree


class AdjacencyMatrix:
    """``M[token] = the top-k next-token candidates seen last after ``token``."""

    def __init__(self, vocab_size: int, topk: int) -> None:
        self.table = np.zeros((vocab_size, topk), dtype=np.int64)

    @property
    def vocab_size(self) -> int:
        """Rows of the matrix."""
        return int(self.table.shape[0])

    @property
    def topk(self) -> int:
        """Candidates per row."""
        return int(self.table.shape[1])

    @property
    def nbytes(self) -> int:
        """Storage in bytes."""
        return int(self.table.nbytes)

    def draft(self, root: int, tree: DraftTree) -> np.ndarray:
        """Token ids of every tree node (index 0 = ``root``), filled level by level (BFS)."""
        ids = np.zeros(tree.size, dtype=np.int64)
        ids[0] = root
        for start, stop in tree.levels:
            ids[start:stop] = self.table[ids[tree.parents[start:stop]], tree.ranks[start:stop]]
        return ids

    def update(self, ids: np.ndarray, logits: torch.Tensor) -> None:
        """Overwrite the rows of ``ids`` with the top-k of ``logits`` ``[N, V]`` at those positions."""
        k = min(self.topk, int(logits.shape[-1]))
        top = torch.topk(logits.float(), k, dim=-1).indices.cpu().numpy()
        last: dict[int, int] = {}
        for pos, tok in enumerate(ids.tolist()):
            last[tok] = pos  # a token seen twice keeps its last position's candidates
        rows = np.fromiter(last.keys(), dtype=np.int64)
        cols = np.fromiter(last.values(), dtype=np.int64)
        self.table[rows, :k] = top[cols]
