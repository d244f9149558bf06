"""Explicit-loop reference computations of ORMA's alignment side, for the faithfulness tests.

Written from the description of ORMA's official code (ORMA.md §1.3–1.4:
``get_phrase_rep``, ``get_sparc_rep``, ``get_local_logits``, ``get_mid_logits``,
``cross_entropy_loss``) one pair, one token, one atom at a time, on Python
floats, so they share no code and no vectorisation with ``repmix_orma``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vec = list[float]
Mat = list[list[float]]

#: torch.nn.LayerNorm's default eps (ORMA's LayerNorm(emb_dim, elementwise_affine=False)).
LN_EPS = 1e-5


def dot(u: Sequence[float], v: Sequence[float]) -> float:
    return sum(a * b for a, b in zip(u, v))


def unit(u: Sequence[float], eps: float = 1e-12) -> Vec:
    """``u / max(||u||, eps)`` (torch.nn.functional.normalize)."""
    norm = math.sqrt(dot(u, u))
    return [a / max(norm, eps) for a in u]


def layer_norm(u: Sequence[float]) -> Vec:
    """LayerNorm without affine: ``(u - mean) / sqrt(var + eps)``, population variance."""
    mean = sum(u) / len(u)
    var = sum((a - mean) ** 2 for a in u) / len(u)
    return [(a - mean) / math.sqrt(var + LN_EPS) for a in u]


def orma_cost(x: Mat, x_mask: Sequence[bool], y: Mat, y_mask: Sequence[bool], eps: float) -> Mat:
    """``1 - cos(x_t, y_m)``; similarity ``eps`` where the token or the motif is padded."""
    cost = []
    for t in range(len(x)):
        row = []
        for m in range(len(y)):
            sim = dot(unit(x[t]), unit(y[m])) if (x_mask[t] and y_mask[m]) else eps
            row.append(1.0 - sim)
        cost.append(row)
    return cost


def ipot(cost: Mat, beta: float, iterations: int, eps: float) -> Mat:
    """ORMA's IPOT: uniform 1/n, 1/m over all slots, sigma = 1/m, T = 1, one inner step."""
    n, m = len(cost), len(cost[0])
    a = [[math.exp(-cost[i][j] / beta) for j in range(m)] for i in range(n)]
    sigma = [1.0 / m] * m
    plan = [[1.0] * m for _ in range(n)]
    for _ in range(iterations):
        q = [[a[i][j] * plan[i][j] for j in range(m)] for i in range(n)]
        delta = [1.0 / (n * sum(q[i][j] * sigma[j] for j in range(m)) + eps) for i in range(n)]
        sigma = [1.0 / (m * sum(q[i][j] * delta[i] for i in range(n)) + eps) for j in range(m)]
        plan = [[delta[i] * q[i][j] * sigma[j] for j in range(m)] for i in range(n)]
    return plan


def assign(plan: Mat, x_mask: Sequence[bool], y_mask: Sequence[bool], mode: str) -> list[int]:
    """Each token's motif: first arg-min (or arg-max) of its plan row over real motifs; 0 when none."""
    out = []
    for i, row in enumerate(plan):
        best, best_j = None, 0
        for j, v in enumerate(row):
            if not (x_mask[i] and y_mask[j]):
                continue
            if best is None or (v < best if mode == "argmin" else v > best):
                best, best_j = v, j
        out.append(best_j)
    return out


def multitokens(x: Mat, index: Sequence[int], counted: Sequence[bool], num_motifs: int, eps: float) -> Mat:
    """Motif k's multi-token vector: sum of the counted tokens assigned to k / (count + eps)."""
    dim = len(x[0])
    out = []
    for k in range(num_motifs):
        total, count = [0.0] * dim, 0
        for t, row in enumerate(x):
            if counted[t] and index[t] == k:
                total = [s + v for s, v in zip(total, row)]
                count += 1
        out.append([s / (count + eps) for s in total])
    return out


def sparc(
    x: Mat, x_mask: Sequence[bool], y: Mat, y_mask: Sequence[bool], eps: float, include_padding: bool
) -> tuple[Vec, Vec]:
    """ORMA's SPARC-like pooling of one pair -> (LayerNorm(sum unit(x_t)), LayerNorm(sum unit(g_t)))."""
    dim = len(x[0])
    first, second = [0.0] * dim, [0.0] * dim
    for t in range(len(x)):
        if not include_padding and not x_mask[t]:
            continue
        sims = [dot(x[t], y[k]) for k in range(len(y))]
        cols = range(len(y)) if include_padding else [k for k in range(len(y)) if y_mask[k]]
        low = min((sims[k] for k in cols), default=0.0)
        high = max((sims[k] for k in cols), default=0.0)
        norm = []
        for k in range(len(y)):
            if x_mask[t] and y_mask[k]:
                norm.append((sims[k] - low) / (high - low + eps))
            else:
                norm.append(eps if include_padding else 0.0)
        total = sum(norm)
        weights = [v / (total + eps) for v in norm]
        grouped = [sum(weights[k] * y[k][d] for k in range(len(y))) for d in range(dim)]
        first = [s + v for s, v in zip(first, unit(x[t]))]
        second = [s + v for s, v in zip(second, unit(grouped))]
    return layer_norm(first), layer_norm(second)


def mid_pair(
    x: Mat,
    x_mask: Sequence[bool],
    y: Mat,
    y_mask: Sequence[bool],
    *,
    beta: float = 0.5,
    iterations: int = 50,
    eps: float = 1e-8,
    mode: str = "argmin",
    include_padding: bool = False,
) -> tuple[Vec, Vec]:
    """The multitoken–motif level of one pair: cost, IPOT, assignment, means, pooling."""
    plan = ipot(orma_cost(x, x_mask, y, y_mask, eps), beta, iterations, eps)
    index = assign(plan, x_mask, y_mask, mode)
    counted = [True] * len(x) if include_padding else list(x_mask)
    phrases = multitokens(x, index, counted, len(y), eps)
    return sparc(phrases, y_mask, y, y_mask, eps, include_padding)


def symmetric_ce(logits: Mat) -> float:
    """``(CE(logits, diag) + CE(logits.T, diag)) / 2`` for a square matrix."""
    n = len(logits)

    def ce(rows: Mat) -> float:
        total = 0.0
        for i, row in enumerate(rows):
            top = max(row)
            total += top + math.log(sum(math.exp(v - top) for v in row)) - row[i]
        return total / n

    cols = [[logits[i][j] for i in range(n)] for j in range(n)]
    return (ce(logits) + ce(cols)) / 2
