"""Static draft-tree templates and the tensors Token Recycling derives from them.

A template lists the tree's nodes (the root excluded) as paths from the root: ``[i]`` is the
root's ``i``-th candidate, ``[i, j]`` the ``j``-th candidate of that node, and so on
(``model/recycling/tree_template_.py`` of the official code). From a template this module
builds, once:

* ``parents`` / ``ranks`` / ``depths`` of every node (index 0 is the root);
* the BFS levels, so a draft is filled level by level from the adjacency matrix;
* the tree-attention mask ``[N+1, N+1]``: node ``i`` sees node ``j`` iff ``j`` is ``i`` or one
  of its ancestors (every row is a root-to-node path);
* the root-to-leaf paths (node indices, padded with -1) used to find the longest accepted
  draft, in the order of the official ``search_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The official default template, version "2.2.2": 80 nodes in 6 levels (8, 21, 25, 15, 8, 3).
TEMPLATE_2_2_2: tuple[tuple[int, ...], ...] = tuple(tuple(p) for p in [
    [0], [1], [2], [3], [4], [5], [6], [7],
    [0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1],
    [2, 2], [3, 0], [3, 1], [4, 0], [5, 0], [6, 0], [7, 0],
    [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4], [0, 0, 5], [0, 0, 6], [0, 0, 7], [0, 1, 0], [0, 1, 1],
    [0, 1, 2], [0, 2, 0], [0, 2, 1], [0, 3, 0], [0, 4, 0], [0, 5, 0], [0, 6, 0], [0, 7, 0], [1, 0, 0], [1, 0, 1],
    [1, 1, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0], [5, 0, 0],
    [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 4], [0, 0, 1, 0], [0, 0, 1, 1], [0, 0, 2, 0],
    [0, 0, 3, 0], [0, 0, 4, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
    [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2], [0, 0, 0, 1, 0], [0, 0, 0, 2, 0], [0, 0, 1, 0, 0],
    [0, 1, 0, 0, 0], [1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0],
])

#: "2.2.2" pruned to 20 nodes in 6 levels (4, 6, 4, 3, 2, 1): the spec's small CPU version.
TEMPLATE_SMALL: tuple[tuple[int, ...], ...] = tuple(tuple(p) for p in [
    [0], [1], [2], [3],
    [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0],
    [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0],
    [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0],
    [0, 0, 0, 0, 0], [0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0],
])

TEMPLATES: dict[str, tuple[tuple[int, ...], ...]] = {"2.2.2": TEMPLATE_2_2_2, "small": TEMPLATE_SMALL}


class TreeError(ValueError):
    """A template that is not a tree of candidate ranks."""


@dataclass(frozen=True)
class DraftTree:
    """A draft tree from a template; node 0 is the root (the last accepted token)."""

    paths: tuple[tuple[int, ...], ...]
    parents: np.ndarray  # [N+1] int64, -1 for the root
    ranks: np.ndarray  # [N+1] candidate index in the parent's adjacency row, -1 for the root
    depths: np.ndarray  # [N+1] 0 for the root
    levels: tuple[tuple[int, int], ...]  # [start, stop) node ranges of depth 1, 2, ...
    ancestors: np.ndarray  # [N+1, N+1] bool: node i attends to j (j == i or an ancestor of i)
    leaf_paths: np.ndarray  # [L, max_depth+1] node indices root -> leaf, -1 padding

    @property
    def size(self) -> int:
        """Nodes including the root."""
        return int(self.parents.shape[0])

    @property
    def max_depth(self) -> int:
        """Depth of the deepest node (0 for a root-only tree)."""
        return int(self.depths.max())

    @classmethod
    def from_template(cls, template: Sequence[Sequence[int]], topk: int) -> DraftTree:
        """Validate ``template`` against ``topk`` candidates per token and derive the tree tensors.

        Nodes are ordered by depth (stable, so the template's order within a level is kept), as
        the official code requires; a node whose proper prefix is missing, a rank outside
        ``[0, topk)`` or a repeated path is a :class:`TreeError`.
        """
        paths: list[tuple[int, ...]] = []
        for k, raw in enumerate(template):
            if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) == 0:
                raise TreeError(f"tree node {k} must be a non-empty list of candidate ranks, got {raw!r}")
            path = tuple(raw)
            if any(isinstance(r, bool) or not isinstance(r, int) for r in path):
                raise TreeError(f"tree node {k} ({list(path)}) must hold integers")
            bad = [r for r in path if not 0 <= r < topk]
            if bad:
                raise TreeError(f"tree node {list(path)} uses candidate rank {bad[0]}, outside [0, {topk}) for topk {topk}")
            paths.append(path)
        if len(set(paths)) != len(paths):
            dup = next(p for p in paths if paths.count(p) > 1)
            raise TreeError(f"tree node {list(dup)} appears twice")
        known = set(paths)
        for p in paths:
            if len(p) > 1 and p[:-1] not in known:
                raise TreeError(f"tree node {list(p)} has no parent node {list(p[:-1])} in the template")
        order = sorted(range(len(paths)), key=lambda i: len(paths[i]))
        paths = [paths[i] for i in order]
        index = {p: i + 1 for i, p in enumerate(paths)}
        n = len(paths) + 1
        parents = np.full(n, -1, dtype=np.int64)
        ranks = np.full(n, -1, dtype=np.int64)
        depths = np.zeros(n, dtype=np.int64)
        for i, p in enumerate(paths, start=1):
            parents[i] = index[p[:-1]] if len(p) > 1 else 0
            ranks[i] = p[-1]
            depths[i] = len(p)
        ancestors = np.zeros((n, n), dtype=bool)
        for i in range(n):
            j = i
            while j >= 0:
                ancestors[i, j] = True
                j = int(parents[j])
        levels: list[tuple[int, int]] = []
        for d in range(1, int(depths.max()) + 1 if n > 1 else 1):
            members = np.nonzero(depths == d)[0]
            levels.append((int(members[0]), int(members[-1]) + 1))
        has_child = np.zeros(n, dtype=bool)
        has_child[parents[parents >= 0]] = True
        leaves = [i for i in range(n) if not has_child[i]]
        width = int(depths.max()) + 1
        leaf_paths = np.full((len(leaves), width), -1, dtype=np.int64)
        for r, leaf in enumerate(leaves):
            chain = []
            j = leaf
            while j >= 0:
                chain.append(j)
                j = int(parents[j])
            chain.reverse()
            leaf_paths[r, : len(chain)] = chain
        return cls(tuple(paths), parents, ranks, depths, tuple(levels), ancestors, leaf_paths)

    def truncated(self, max_depth: int) -> DraftTree:
        """The same tree without nodes deeper than ``max_depth`` (near the model's context limit)."""
        if max_depth >= self.max_depth:
            return self
        keep = [p for p in self.paths if len(p) <= max(max_depth, 0)]
        return DraftTree.from_template(keep, topk=int(self.ranks.max()) + 1 if self.size > 1 else 1)


def resolve_template(tree: str | Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """A named template (``2.2.2``, ``small``) or an explicit list of paths."""
    if isinstance(tree, str):
        if tree not in TEMPLATES:
            raise TreeError(f"unknown tree template {tree!r}; known: {', '.join(sorted(TEMPLATES))} (or a list of paths)")
        return TEMPLATES[tree]
    return tuple(tuple(p) for p in tree)
