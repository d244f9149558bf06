"""ORMA's multitoken–motif level: token -> motif optimal transport, multi-token vectors, weighted pooling.

Official code: ``modeling.py``, ``Orma.get_phrase_rep`` then ``get_mid_logits``.
For one (text, molecule) pair with multi-token base states ``x`` [T, D]
(``between: [text.multitoken-base, molecule.motif]``: the second-to-last
text layer) and motif states ``y`` [M, D]:

1. cost ``C = 1 - cos(x_t, y_m)``; entries involving a padded token or motif
   get similarity ``epsilon`` (cost ``1 - epsilon``);
2. a transport plan ``P`` [T, M] from IPOT (Xie et al. 2019: proximal point
   with ``beta = 0.5``, 50 iterations, one inner Sinkhorn step, uniform
   marginals over all ``T`` and ``M`` slots, padding included) or, as an
   alternative, entropic Sinkhorn (POT's ``ot.sinkhorn`` iteration, batched);
3. a hard assignment of each token to one motif, ``argmin`` over the motifs
   of ``P`` (the official code, as written) or ``argmax``;
4. multi-token vector of motif ``k`` = mean of the (un-normalised) ``x`` of
   the tokens assigned to ``k``, ``sum / (count + epsilon)``, masked like the motifs;
5. the similarity-weighted pooling of :func:`repmix_orma.fine_grained.sparc_pool`
   between multi-tokens and motifs, LayerNorm, and the inner product.

Steps 2–3 run without gradient (the assignment is discrete); gradients reach
``x`` through the means of step 4 and ``y`` through step 5. Every step is
batched over all pairs: no Python loop over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from repmix.sdk import (
    Aligner,
    Alignment,
    ComponentConfig,
    Granularity,
    InputError,
    Runtime,
    ShapeReq,
)
from torch import Tensor

from repmix_orma.fine_grained import (
    DEFAULT_CHUNK_ELEMENTS,
    DEFAULT_DETAIL_MAX_ELEMENTS,
    ORMA_CITATION,
    TrainScoring,
    check_scoring_inputs,
    empty_scores,
    score_pairs,
    sparc_pool,
    use_paired,
)

IPOT_CITATION = (
    "Xie, Wang, Wang & Zha (2019). A Fast Proximal Point Method for Computing Exact Wasserstein Distance. "
    "UAI 2019 (IPOT)."
)
SINKHORN_CITATION = (
    "Cuturi (2013). Sinkhorn Distances: Lightspeed Computation of Optimal Transport. NeurIPS 2013; "
    "Iteration and stopping rule of POT's ot.sinkhorn (Flamary et al. 2021, JMLR 22(78)), batched."
)

Solver = Literal["ipot", "sinkhorn"]
Marginals = Literal["all-slots", "real"]
Assignment = Literal["argmin", "argmax"]
SinkhornBackend = Literal["torch", "pot"]

_IPOT_KEYS = ("beta", "iterations", "inner_iterations")
_SINKHORN_KEYS = ("reg", "max_iter", "tol", "log_domain", "backend")


# --------------------------------------------------------------------------- solvers
def ipot(
    cost: Tensor,
    row_weight: Tensor,
    col_weight: Tensor,
    *,
    beta: float = 0.5,
    iterations: int = 50,
    inner_iterations: int = 1,
    epsilon: float = 1e-8,
) -> Tensor:
    """IPOT transport plans for a batch of problems, exactly as ORMA's ``get_phrase_rep`` iterates.

    Args:
        cost: ``[P, n, m]`` cost matrices.
        row_weight: ``[P, n]`` multiplicity of each row slot (1 = one slot, 0 = not
            part of the problem, k = k identical merged slots).
        col_weight: ``[P, m]`` likewise for the columns.
        beta: proximal parameter (ORMA hard-codes 0.5).
        iterations: outer proximal iterations (ORMA: 50; no stopping criterion).
        inner_iterations: Sinkhorn steps per outer iteration (ORMA: 1).
        epsilon: ORMA's stabilising constant in the scaling denominators.

    With ``n = sum(row_weight)``, ``m = sum(col_weight)``, starting from
    ``sigma = 1/m`` and ``T = 1``::

        A = exp(-C / beta)
        repeat: Q = A * T
                delta = 1 / (n * Q (w_col * sigma) + epsilon)      (inner steps)
                sigma = 1 / (m * Q^T (w_row * delta) + epsilon)
                T = diag(delta) Q diag(sigma)

    With unit weights this is line for line the official update (uniform
    marginals 1/n and 1/m over all slots). Returns the per-slot plan ``[P, n, m]``.

    Hand-written rather than POT's ``ot.batch.solve_batch(method="proximal")``
    because ORMA's fixed iteration count, initialisation, ``epsilon`` placement and
    multiplicative (not log-domain) updates are what is being reproduced.
    """
    n = row_weight.sum(dim=-1, keepdim=True)
    m = col_weight.sum(dim=-1, keepdim=True)
    kernel = torch.exp(-cost / beta)
    sigma = torch.ones_like(col_weight) / m
    delta = torch.ones_like(row_weight)
    plan = torch.ones_like(cost)
    for _ in range(iterations):
        q = kernel * plan
        for _ in range(inner_iterations):
            delta = 1.0 / (n * torch.einsum("pnm,pm->pn", q, col_weight * sigma) + epsilon)
            sigma = 1.0 / (m * torch.einsum("pnm,pn->pm", q, row_weight * delta) + epsilon)
        plan = delta.unsqueeze(-1) * q * sigma.unsqueeze(-2)
    return plan


def sinkhorn(
    cost: Tensor,
    row_weight: Tensor,
    col_weight: Tensor,
    *,
    reg: float = 0.1,
    max_iter: int = 1000,
    tol: float = 1e-6,
    log_domain: bool | Literal["auto"] = "auto",
    backend: SinkhornBackend = "torch",
) -> Tensor:
    """Entropic OT plans for a batch of problems.

    Marginals are ``a = row_weight / sum(row_weight)`` and
    ``b = col_weight / sum(col_weight)`` (zero weight = zero mass).
    ``backend="torch"`` runs :func:`batched_sinkhorn_knopp` (POT's ``ot.sinkhorn``
    iteration and stopping rule, batched); ``backend="pot"`` calls POT's own batched
    solver ``ot.solve_batch(cost, reg, a, b, method="sinkhorn" | "log_sinkhorn")``,
    which stops all problems together on the largest row-marginal error.
    ``log_domain="auto"`` uses the plain (faster) iterations when
    :func:`plain_sinkhorn_is_safe`, else the log domain.
    Returns the per-slot plan ``[P, n, m]`` (a merged row of weight k is divided by k).
    """
    a = row_weight / row_weight.sum(dim=-1, keepdim=True)
    b = col_weight / col_weight.sum(dim=-1, keepdim=True)
    if log_domain == "auto":
        max_cost = float(cost.max()) if cost.numel() else 0.0
        log_domain = not plain_sinkhorn_is_safe(max_cost, reg, cost.dtype)
    if backend == "pot":
        import ot

        method = "log_sinkhorn" if log_domain else "sinkhorn"
        plan = ot.solve_batch(cost, reg, a, b, max_iter=max_iter, tol=tol, method=method, grad="detach").plan
    else:
        plan = batched_sinkhorn_knopp(cost, a, b, reg=reg, max_iter=max_iter, tol=tol, log_domain=log_domain)
    rows = torch.where(row_weight > 0, row_weight, torch.ones_like(row_weight))
    cols = torch.where(col_weight > 0, col_weight, torch.ones_like(col_weight))
    return plan / rows.unsqueeze(-1) / cols.unsqueeze(-2)


def batched_sinkhorn_knopp(
    cost: Tensor, a: Tensor, b: Tensor, *, reg: float, max_iter: int, tol: float, log_domain: bool
) -> Tensor:
    """POT's ``ot.sinkhorn`` (``sinkhorn_knopp``) on a batch ``[P, n, m]``, each problem stopping on its own.

    Per problem, exactly POT's iteration: ``u = 1/n``, ``v = 1/m`` (over the slots with mass),
    ``K = exp(-C/reg)``; repeat ``v = b / K^T u``, ``u = a / K v``; every 10th
    iteration (0, 10, ...) stop when ``|| v * K^T u - b ||_2 < tol`` (the column
    marginal error). A problem that has converged leaves the working set, so each
    stops after the same number of iterations as POT's per-pair loop. With
    ``log_domain`` the same iteration runs on ``log u``, ``log v`` with
    ``logsumexp`` (stable for any ``reg``). Zero-mass slots get zero scalings.

    Written here rather than calling ``ot.batch``: POT's batched kernel multiplies
    ``K`` by the scaling vector into a new ``[P, n, m]`` tensor and sums it, twice per
    iteration, and iterates every problem until the slowest converges; batched
    matrix-vector products (``bmm``) and the shrinking working set are what make the
    batch faster than POT's per-pair loop (benchmarks/bench_orma_ot.py).
    """
    p = cost.shape[0]
    if p == 0:
        return torch.zeros_like(cost)
    # POT's start, 1/n and 1/m, over each problem's live (non-zero mass) slots only: then a problem padded
    # with zero-mass slots follows the same iterates as the unpadded one.
    live_a, live_b = (a > 0).to(cost.dtype), (b > 0).to(cost.dtype)
    start_u = live_a / live_a.sum(-1, keepdim=True)
    start_v = live_b / live_b.sum(-1, keepdim=True)
    if log_domain:
        kernel = -cost / reg
        u, v = start_u.log(), start_v.log()
        log_a, log_b = a.log(), b.log()

        def update(k: Tensor, u: Tensor, v: Tensor, ka: Tensor, kb: Tensor) -> tuple[Tensor, Tensor]:
            v = kb - torch.logsumexp(k + u.unsqueeze(-1), dim=1)
            u = ka - torch.logsumexp(k + v.unsqueeze(-2), dim=2)
            return u, v

        def column_mass(k: Tensor, u: Tensor, v: Tensor) -> Tensor:
            return torch.exp(k + u.unsqueeze(-1) + v.unsqueeze(-2)).sum(dim=1)

        targets = (log_a, log_b)
    else:
        kernel = torch.exp(-cost / reg)
        u, v = start_u, start_v

        def update(k: Tensor, u: Tensor, v: Tensor, ka: Tensor, kb: Tensor) -> tuple[Tensor, Tensor]:
            v = kb / torch.bmm(u.unsqueeze(1), k).squeeze(1)
            u = ka / torch.bmm(k, v.unsqueeze(-1)).squeeze(-1)
            return u, v

        def column_mass(k: Tensor, u: Tensor, v: Tensor) -> Tensor:
            return v * torch.bmm(u.unsqueeze(1), k).squeeze(1)

        targets = (a, b)
    active = torch.arange(p, device=cost.device)
    k, ua, va = kernel, u, v
    ta, tb, b_act = targets[0], targets[1], b
    for it in range(max_iter):
        ua, va = update(k, ua, va, ta, tb)
        if it % 10 == 0 or it == max_iter - 1:
            err = torch.linalg.vector_norm(column_mass(k, ua, va) - b_act, dim=-1)
            done = err < tol
            if it == max_iter - 1:
                done = torch.ones_like(done)
            if bool(done.any()):
                u[active[done]], v[active[done]] = ua[done], va[done]
                keep = ~done
                if not bool(keep.any()):
                    break
                active, k, ua, va = active[keep], k[keep], ua[keep], va[keep]
                ta, tb, b_act = ta[keep], tb[keep], b_act[keep]
    # Finite scalings give a finite plan (zero-mass slots: u = 0, log u = -inf, both fine).
    finite = bool((torch.isfinite(u) | (a == 0)).all()) and bool((torch.isfinite(v) | (b == 0)).all())
    if log_domain:
        plan = torch.exp(kernel + u.unsqueeze(-1) + v.unsqueeze(-2))
    else:
        plan = u.unsqueeze(-1) * kernel * v.unsqueeze(-2)
    if not finite:
        raise InputError(
            f"orma.ot-multitoken: the sinkhorn plan is not finite (reg {reg:g}, {cost.dtype})",
            hint="set log_domain: true (or 'auto') or a larger reg",
        )
    return plan


def plain_sinkhorn_is_safe(max_cost: float, reg: float, dtype: torch.dtype) -> bool:
    """Whether ``exp(-cost / reg)`` and the scalings it implies stay well inside ``dtype``'s range.

    Plain Sinkhorn multiplies by the kernel ``K = exp(-C / reg)`` and divides by
    ``K`` products; it is used while ``max_cost / reg`` is at most 40 % of
    ``-log(smallest normal)`` (float32: ``reg >= 0.057`` for ORMA's costs in
    [0, 2]; float64: ``reg >= 0.0071``), else the log domain.
    """
    return max_cost / reg <= 0.4 * -math.log(torch.finfo(dtype).tiny)


def solve_grouped(
    solve: Callable[[Tensor, Tensor, Tensor], Tensor],
    cost: Tensor,
    row_weight: Tensor,
    col_weight: Tensor,
    group: int,
) -> Tensor:
    """Run ``solve(cost, rows, cols)`` on problems grouped by size, each trimmed to its group's real slots.

    Slots of weight 0 carry no mass and influence no other slot (for both solvers),
    so each problem's weighted slots are moved to the front, problems are sorted by
    their number of weighted cells and solved ``group`` at a time on tensors cut to
    the group's largest problem. Padding then costs no work. Returns the plans
    ``[P, n, m]`` in the original slot order, 0 on zero-weight slots.
    """
    p, n, m = cost.shape
    live_r, live_c = row_weight > 0, col_weight > 0
    if bool(live_r.all()) and bool(live_c.all()) and p <= group:
        return solve(cost, row_weight, col_weight)
    r_order = torch.argsort((~live_r).to(torch.int8), dim=-1, stable=True)
    c_order = torch.argsort((~live_c).to(torch.int8), dim=-1, stable=True)
    n_live, m_live = live_r.sum(-1), live_c.sum(-1)
    out = torch.zeros_like(cost)
    for idx in torch.argsort(n_live * m_live).split(group):
        nr, nc = int(n_live[idx].max()), int(m_live[idx].max())
        ro, co = r_order[idx, :nr], c_order[idx, :nc]
        sub = cost[idx].gather(1, ro.unsqueeze(-1).expand(-1, -1, m)).gather(2, co.unsqueeze(1).expand(-1, nr, -1))
        plan = solve(sub, row_weight[idx].gather(1, ro), col_weight[idx].gather(1, co))
        full = torch.zeros(len(idx), nr, m, dtype=plan.dtype, device=plan.device)
        full.scatter_(2, co.unsqueeze(1).expand(-1, nr, -1), plan)
        rows = torch.zeros(len(idx), n, m, dtype=plan.dtype, device=plan.device)
        rows.scatter_(1, ro.unsqueeze(-1).expand(-1, -1, m), full)
        out[idx] = rows
    return out


# --------------------------------------------------------------------------- steps
def orma_cost(x: Tensor, x_mask: Tensor, y: Tensor, y_mask: Tensor, epsilon: float) -> Tensor:
    """``1 - cos(x_t, y_m)`` with similarity ``epsilon`` wherever a token or motif is padded ``[..., T, M]``.

    The cosine is ``x·y / (max(|x|, 1e-12) · max(|y|, 1e-12))``, the value of
    ``F.normalize`` on both sides, without materialising the normalised copies.
    """
    x_norm = torch.linalg.vector_norm(x, dim=-1).clamp_min(1e-12)
    y_norm = torch.linalg.vector_norm(y, dim=-1).clamp_min(1e-12)
    sim = torch.einsum("...td,...md->...tm", x, y) / (x_norm.unsqueeze(-1) * y_norm.unsqueeze(-2))
    pair = x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)
    return 1.0 - sim.masked_fill(~pair, epsilon)


class OTMultiTokenAligner(Aligner):
    """ORMA's multitoken–motif level: token -> motif OT, hard assignment, multi-token means, weighted pooling.

    ``between: [text.multitoken-base, molecule.motif]``: ORMA's cost compares the
    multi-token base states (second-to-last text layer) with the motifs and the
    multi-token vectors average the same base states, so these two
    granularities are all the level needs. In training with
    ``train_scoring: paired`` (ORMA) the logits are
    ``first_ii · second_jj`` (row ``i`` from the pair (text ``i``, molecule ``i``),
    column ``j`` from (text ``j``, molecule ``j``)); in evaluation mode, and in
    training with ``train_scoring: all-pairs``, every (text ``i``, molecule
    ``j``) gets its own transport problem and pooling:
    ``score = first_ij · second_ij``, in blocks, ``B_a·B_b`` problems.

    ``Alignment.detail``: ``scoring``, and (within ``detail_max_elements``)
    ``plan`` [.., T, M], ``assignment`` [.., T] (motif index; -1 for a token
    that joins no real motif's multi-token vector), ``multitoken`` [.., M, D], ``first`` and
    ``second`` [.., D]; leading dims ``[B]`` when paired, ``[B_a, B_b]`` otherwise.
    """

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("sequence", "sequence")
    citation: ClassVar[str] = ORMA_CITATION + " " + IPOT_CITATION + " " + SINKHORN_CITATION

    class Config(ComponentConfig):
        """Options of ``orma.ot-multitoken`` (defaults: the official code)."""

        solver: Solver = Field("ipot", description="'ipot' (ORMA) or 'sinkhorn' (entropic, POT's ot.sinkhorn batched)")
        beta: float = Field(0.5, gt=0, description="ipot: proximal parameter (ORMA: 0.5)")
        iterations: int = Field(50, ge=1, description="ipot: outer iterations, no early stop (ORMA: 50)")
        inner_iterations: int = Field(1, ge=1, description="ipot: Sinkhorn steps per outer iteration (ORMA: 1)")
        reg: float = Field(0.1, gt=0, description="sinkhorn: entropic regularisation strength")
        max_iter: int = Field(1000, ge=1, description="sinkhorn: most iterations")
        tol: float = Field(
            1e-6, ge=0, description="sinkhorn: stop a problem when its marginal error (2-norm) is below, checked every 10 iterations"
        )
        backend: SinkhornBackend = Field(
            "torch",
            description="sinkhorn: 'torch' (batched POT ot.sinkhorn iteration, each problem stopping on its own) "
            "or 'pot' (POT's ot.solve_batch, all problems stop together)",
        )
        log_domain: bool | Literal["auto"] = Field(
            "auto",
            description="sinkhorn: log-domain iterations (stable for any reg); 'auto' uses the faster plain "
            "iterations while exp(-cost / reg) stays well inside the float range",
        )
        marginals: Marginals = Field(
            "all-slots",
            description="'all-slots' (ORMA): uniform over every token and motif slot, padding only masked in "
            "the cost; 'real': uniform over real tokens and motifs, zero mass on padding",
        )
        num_token_slots: int | None = Field(
            None,
            ge=1,
            description="all-slots: count this many token slots (ORMA's max_text_length) whatever the batch's "
            "padding; unset = the batch's padded length",
        )
        num_motif_slots: int | None = Field(
            None,
            ge=1,
            description="all-slots: count this many motif slots (ORMA's num_motif); unset = the batch's padded length",
        )
        assignment: Assignment = Field(
            "argmin",
            description="token -> motif: 'argmin' of the plan row (the official code as written) or 'argmax'",
        )
        epsilon: float = Field(
            1e-8,
            gt=0,
            description="ORMA's config.epsilon: similarity of padded cost entries, denominator stabiliser "
            "(IPOT scalings, multi-token means, pooling)",
        )
        include_padding: bool = Field(
            False,
            description="official padding: padded tokens are assigned to motif 0 and averaged into it, and the "
            "pooling runs over every slot (see orma.weighted-pooling)",
        )
        train_scoring: TrainScoring = Field(
            "paired",
            description="training logits: 'paired' (ORMA: one OT problem per pair (i, i), needs B_a == B_b) or "
            "'all-pairs' (one per (i, j), as evaluation always does)",
        )
        chunk_elements: int = Field(
            DEFAULT_CHUNK_ELEMENTS, ge=1, description="element budget of one block of pairs in all-pairs scoring"
        )
        solver_group: int = Field(
            256,
            ge=1,
            description="problems solved together when padding carries no mass (marginals 'real' or fixed slot "
            "counts): sorted by size and trimmed to each group's largest; raise it on a GPU",
        )
        detail_max_elements: int = Field(
            DEFAULT_DETAIL_MAX_ELEMENTS,
            ge=0,
            description="keep plans, assignments, multi-tokens and pooled vectors in Alignment.detail while "
            "their total size stays under this many elements",
        )

        @model_validator(mode="after")
        def _check_solver_keys(self) -> OTMultiTokenAligner.Config:
            other = _SINKHORN_KEYS if self.solver == "ipot" else _IPOT_KEYS
            fields = type(self).model_fields
            stray = sorted(k for k in other if getattr(self, k) != fields[k].default)
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} only apply to solver "
                    f"{'sinkhorn' if self.solver == 'ipot' else 'ipot'}, but solver is {self.solver!r}"
                )
            fixed = [k for k in ("num_token_slots", "num_motif_slots") if getattr(self, k) is not None]
            if fixed and self.marginals != "all-slots":
                raise ValueError(f"{', '.join(fixed)} only apply to marginals 'all-slots'")
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    # ------------------------------------------------------------------ steps
    def _weights(
        self, x_mask: Tensor, y_mask: Tensor, shape: torch.Size, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, bool]:
        """Slot multiplicities ``[..., T(+1)]`` and ``[..., M(+1)]``; True when a merged padding slot is appended."""
        lead = shape[:-2]
        rows = x_mask.expand(*lead, shape[-2]).to(dtype)
        cols = y_mask.expand(*lead, shape[-1]).to(dtype)
        cfg = self.config
        if cfg.marginals == "real":
            # A problem without real tokens or motifs has no mass to move: solve a dummy uniform one, report 0.
            empty = (rows.sum(-1, keepdim=True) == 0) | (cols.sum(-1, keepdim=True) == 0)
            return torch.where(empty, 1.0, rows), torch.where(empty, 1.0, cols), False
        if cfg.num_token_slots is None and cfg.num_motif_slots is None:
            return torch.ones_like(rows), torch.ones_like(cols), False
        # Fixed slot counts: every padded slot of the problem is the same row (column) of cost 1 - epsilon,
        # so they are merged into one appended slot of multiplicity (slots - real); batch padding weighs 0.
        n_slots = cfg.num_token_slots if cfg.num_token_slots is not None else shape[-2]
        m_slots = cfg.num_motif_slots if cfg.num_motif_slots is not None else shape[-1]
        extra_rows = (n_slots - rows.sum(-1, keepdim=True)).clamp(min=0)
        extra_cols = (m_slots - cols.sum(-1, keepdim=True)).clamp(min=0)
        return torch.cat([rows, extra_rows], dim=-1), torch.cat([cols, extra_cols], dim=-1), True

    def _solve(self, cost: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """The configured solver on ``[P, n, m]`` problems with slot weights."""
        cfg = self.config
        if cfg.solver == "ipot":
            return ipot(
                cost, rows, cols,
                beta=cfg.beta, iterations=cfg.iterations, inner_iterations=cfg.inner_iterations, epsilon=cfg.epsilon,
            )
        return sinkhorn(
            cost, rows, cols,
            reg=cfg.reg, max_iter=cfg.max_iter, tol=cfg.tol, log_domain=cfg.log_domain, backend=cfg.backend,
        )

    def transport_plan(self, x: Tensor, x_mask: Tensor, y: Tensor, y_mask: Tensor) -> Tensor:
        """Per-slot transport plans ``[..., T, M]`` (no gradient) for broadcastable pairs.

        Entries of slots that take no part in the problem (padding under
        ``marginals: real`` or fixed slot counts) are 0; under ``all-slots``
        without fixed counts every batch slot is part of the problem.
        """
        cfg = self.config
        with torch.no_grad():
            work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
            cost = orma_cost(x.detach().to(work), x_mask, y.detach().to(work), y_mask, cfg.epsilon)
            t, m = cost.shape[-2:]
            rows, cols, merged = self._weights(x_mask, y_mask, cost.shape, work)
            if merged:
                cost = F.pad(cost, (0, 1, 0, 1), value=1.0 - cfg.epsilon)
            lead = cost.shape[:-2]
            flat = cost.reshape(-1, *cost.shape[-2:])
            r, c = rows.reshape(-1, rows.shape[-1]), cols.reshape(-1, cols.shape[-1])
            plan = solve_grouped(self._solve, flat, r, c, cfg.solver_group)
            plan = plan.reshape(*lead, *plan.shape[-2:])[..., :t, :m]
            if cfg.marginals == "real" or merged:
                pair = x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)
                plan = plan * pair.to(plan.dtype)
        return plan

    def assign(self, plan: Tensor, x_mask: Tensor, y_mask: Tensor) -> Tensor:
        """Motif index of each token ``[..., T]``: arg-min (official) or arg-max of its plan row over real motifs.

        Entries involving padding are excluded (the official code fills them with
        1.0 before ``min``, above any transport mass); a padded token, or a token of
        a molecule without real motifs, gets motif 0, the first index of a constant row.
        """
        pair = x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)
        if self.config.assignment == "argmin":
            return plan.masked_fill(~pair, torch.inf).min(dim=-1).indices
        return plan.masked_fill(~pair, -torch.inf).max(dim=-1).indices

    def multitokens(self, x: Tensor, x_mask: Tensor, index: Tensor, num_motifs: int) -> tuple[Tensor, Tensor]:
        """Multi-token vectors ``[..., M, D]`` (mean of the assigned tokens' ``x``) and the tokens counted ``[..., T]``.

        ``sum / (count + epsilon)`` as the official code; a motif without tokens gets 0.
        Padded tokens are counted only with ``include_padding`` (then they join motif 0).
        """
        counted = torch.ones_like(index, dtype=torch.bool) if self.config.include_padding else x_mask.expand_as(index)
        one_hot = F.one_hot(index, num_motifs).to(x.dtype) * counted.unsqueeze(-1).to(x.dtype)
        sums = torch.einsum("...tm,...td->...md", one_hot, x)
        counts = one_hot.sum(dim=-2).unsqueeze(-1)
        return sums / (counts + self.config.epsilon), counted

    def _pair(self, x: Tensor, x_mask: Tensor, y: Tensor, y_mask: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Pooled (multi-token, grouped-motif) vectors of broadcastable pairs, and their detail."""
        plan = self.transport_plan(x, x_mask, y, y_mask)
        index = self.assign(plan, x_mask, y_mask)
        phrase, counted = self.multitokens(x, x_mask, index, y.shape[-2])
        first, second = sparc_pool(
            phrase, y_mask, y, y_mask, epsilon=self.config.epsilon, include_padding=self.config.include_padding
        )
        lands = y_mask.expand(*index.shape[:-1], y_mask.shape[-1]).gather(-1, index)
        detail = {"plan": plan, "assignment": index.masked_fill(~(counted & lands), -1), "multitoken": phrase}
        return first, second, detail

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """Logits [B_a, B_b] between multi-token base sequences ``a`` and motif sequences ``b``."""
        x, xm, y, ym = check_scoring_inputs(a, b)
        paired = use_paired(self, self.config.train_scoring, x.shape[0], y.shape[0])
        t, m, d = x.shape[1], y.shape[1], x.shape[-1]
        if x.shape[0] == 0 or y.shape[0] == 0 or t == 0 or m == 0:
            return Alignment(empty_scores(x, y), {"scoring": "paired" if paired else "all-pairs"})
        return score_pairs(
            self._pair, x, xm, y, ym,
            paired=paired,
            per_pair=8 * (t + 1) * (m + 1) + 4 * m * d + 3 * m * m,
            chunk_elements=self.config.chunk_elements,
            detail_max_elements=self.config.detail_max_elements,
        )

    def extra_repr(self) -> str:
        cfg: Any = self.config
        return f"solver={cfg.solver}, marginals={cfg.marginals}, assignment={cfg.assignment}"
