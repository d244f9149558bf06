"""Draft trees: the official template, its masks and paths against a port of the official construction."""

from __future__ import annotations

import numpy as np
import pytest
from repmix.sdk import ConfigError, Runtime
from repmix_token_recycling import (
    TEMPLATE_2_2_2,
    TEMPLATE_SMALL,
    AdjacencyMatrix,
    DraftTree,
    TokenRecycling,
    best_path,
)


def official_prepare_data(template: list[list[int]]) -> tuple[np.ndarray, list[list[int]], list[int], list[int]]:
    """``prepare_data`` of evaluation/inference_recycling.py (Luowaterbi/TokenRecycling), without torch/cuda.

    Returns the tree attention matrix, the search paths (root = 0), the father indices and the
    candidate indices, exactly as the official loop builds them.
    """
    n = len(template) + 1
    att = np.zeros((n, n), dtype=np.int64)
    att[:, 0] = 1
    search_path: list[list[int]] = []
    father_index, candi_index = [-1], [-1]
    for i in range(len(template)):
        deep = len(template[i])
        father_index.append(0 if deep == 1 else template.index(template[i][:-1]) + 1)
        candi_index.append(template[i][-1])
        cur_path = [0]
        att[i + 1, i + 1] = 1
        for j in range(i):
            if template[j] == template[i][: len(template[j])]:
                att[i + 1, j + 1] = 1
                cur_path.append(j + 1)
        cur_path.append(i + 1)
        for sub in range(1, len(cur_path)):
            if cur_path[:sub] in search_path:
                search_path.remove(cur_path[:sub])
        search_path.append(cur_path)
    return att, search_path, father_index, candi_index


@pytest.mark.parametrize("template", [TEMPLATE_2_2_2, TEMPLATE_SMALL], ids=["2.2.2", "small"])
def test_tree_equals_the_official_construction(template: tuple) -> None:
    tree = DraftTree.from_template(template, topk=8)
    att, search, father, candi = official_prepare_data([list(p) for p in template])
    assert np.array_equal(tree.ancestors, att.astype(bool))
    assert tree.parents.tolist() == father and tree.ranks.tolist() == candi
    mine = [[int(i) for i in row if i >= 0] for row in tree.leaf_paths]
    assert mine == search


def test_official_template_shape() -> None:
    tree = DraftTree.from_template(TEMPLATE_2_2_2, topk=8)
    assert tree.size == 81 and tree.max_depth == 6
    assert [int((tree.depths == d).sum()) for d in range(1, 7)] == [8, 21, 25, 15, 8, 3]
    assert DraftTree.from_template(TEMPLATE_SMALL, topk=8).size == 21


def test_every_mask_row_is_a_root_to_node_path() -> None:
    tree = DraftTree.from_template(TEMPLATE_2_2_2, topk=8)
    for i in range(tree.size):
        seen = set(np.nonzero(tree.ancestors[i])[0].tolist())
        chain, j = set(), i
        while j >= 0:
            chain.add(j)
            j = int(tree.parents[j])
        assert seen == chain and 0 in seen
        assert len(seen) == tree.depths[i] + 1


def test_truncation_keeps_shallow_nodes() -> None:
    tree = DraftTree.from_template(TEMPLATE_2_2_2, topk=8)
    t2 = tree.truncated(2)
    assert t2.max_depth == 2 and t2.size == 1 + 8 + 21
    assert tree.truncated(0).size == 1 and tree.truncated(9) is tree


def test_adjacency_draft_is_a_bfs_over_the_matrix() -> None:
    tree = DraftTree.from_template([[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0]], topk=2)
    m = AdjacencyMatrix(vocab_size=10, topk=2)
    m.table[:] = np.array([[(t + 1) % 10, (t + 2) % 10] for t in range(10)])
    ids = m.draft(3, tree)
    # root 3 -> [4, 5]; 4 -> [5, 6]; 5 -> [6]; [0,0,0]: 5 -> 6
    assert ids.tolist() == [3, 4, 5, 5, 6, 6, 6]
    assert m.nbytes == 10 * 2 * 8


def test_adjacency_update_takes_top_k_of_each_position_last_occurrence_wins() -> None:
    import torch

    m = AdjacencyMatrix(vocab_size=6, topk=2)
    logits = torch.tensor([[0, 5, 4, 0, 0, 0], [9, 0, 0, 8, 0, 0], [0, 0, 0, 0, 7, 6.0]])
    m.update(np.array([2, 4, 2]), logits)  # token 2 twice: its last position (row 2) wins
    assert m.table[2].tolist() == [4, 5] and m.table[4].tolist() == [0, 3] and m.table[0].tolist() == [0, 0]


def test_best_path_is_the_longest_greedy_agreement() -> None:
    tree = DraftTree.from_template([[0], [1], [0, 0], [1, 0], [1, 0, 0]], topk=2)
    ids = np.array([7, 1, 2, 3, 4, 5])  # nodes: root=7, [0]=1, [1]=2, [0,0]=3, [1,0]=4, [1,0,0]=5
    greedy = np.array([2, 9, 4, 0, 5, 0])  # after 7 comes 2 (node [1]); after 2 comes 4; after 4 comes 5
    nodes, n = best_path(tree, ids, greedy)
    assert nodes == [0, 2, 4, 5] and n == 3
    greedy[0] = 8  # nothing matches: only the bonus token
    assert best_path(tree, ids, greedy) == ([0], 0)


@pytest.mark.parametrize("tree, match", [
    ([[0], [0, 9]], "rank 9"),
    ([[0], [1, 0]], "no parent"),
    ([[0], [0]], "twice"),
    ([[]], "non-empty"),
    ("2.3", "unknown tree template"),
])
def test_bad_templates_are_rejected_by_the_config(tree: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):  # pydantic's ValidationError; repmix check reports it at its line
        TokenRecycling.Config(tree=tree)


def test_rank_above_topk_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        TokenRecycling.Config(tree=[[0], [5]], topk=4)
    with pytest.raises(ConfigError, match="outside"):  # a config changed after validation
        TokenRecycling(TokenRecycling.Config.model_construct(tree=[[0], [5]], topk=4, verify="auto", persist=True), Runtime())
