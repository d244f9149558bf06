"""XTR scoring: token retrieval decides which document tokens count.

Training (``nn.Module.training``; Lee et al., Eq. 2)::

    A_ab = 1[d_b ∈ top-k_train of q_a over ALL document tokens of the batch]
    f(Q, D) = (1/Z) Σ_a max_{b ∈ D} A_ab · <q_a, d_b>,   Z = #{a : ∃ b ∈ D, A_ab = 1}

Inference (eval mode; the official notebook)::

    retrieve the top-k' document tokens of the whole candidate set for every q_a;
    s(a, D) = the highest retrieved score of a token of D, or m_a = the k'-th (lowest)
              retrieved score of q_a when no token of D was retrieved;
    f(Q, D) = mean_a s(a, D)            (aggregate: sum gives PyLate's score_xtr)

Both reduce to ColBERT MaxSim / |Q| when every token is retrieved (k >= all
document tokens; for training also every similarity >= 0, as the formula's
``max A·s`` then equals the max over retrieved tokens).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    Aligner,
    Alignment,
    ComponentConfig,
    ConfigError,
    Granularity,
    Runtime,
    ShapeReq,
)
from torch import Tensor

#: Score of a document without any real token (as std's maxsim): finite and below every real score.
EMPTY_DOCUMENT_SCORE = -1e9


def faiss_available() -> bool:
    """True when ``faiss`` (pip ``faiss-cpu``) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class TokenIndex:
    """The real (unmasked) tokens of a candidate set, flattened, with the document each belongs to.

    ``search(queries, k)`` returns the top-``k`` tokens of every query vector
    (scores [N, k] sorted descending, token ids [N, k]); scores are always
    recomputed in torch from the ids, so they carry gradients and are the
    same for both index kinds.
    """

    tokens: Tensor  # [N_d, D]
    token_doc: Tensor  # [N_d] document (column) of each token
    n_docs: int
    doc_has_tokens: Tensor  # [B_d] bool
    kind: Literal["exact", "faiss"]
    block_elements: int
    _faiss: Any = None

    @classmethod
    def build(
        cls, d: Tensor, d_mask: Tensor, kind: Literal["exact", "faiss"], block_elements: int
    ) -> TokenIndex:
        """Index the real tokens of ``d`` [B_d, T_d, D] under ``d_mask`` [B_d, T_d]."""
        n_docs = d.shape[0]
        doc_of = torch.arange(n_docs, device=d.device).unsqueeze(1).expand(d_mask.shape)
        return cls(d[d_mask], doc_of[d_mask], n_docs, d_mask.any(dim=1), kind, block_elements)

    def _faiss_index(self) -> Any:
        if self._faiss is None:
            import faiss
            import numpy as np

            vectors = np.ascontiguousarray(self.tokens.detach().float().cpu().numpy())
            index = faiss.IndexFlatIP(vectors.shape[1])
            index.add(vectors)
            self._faiss = index
        return self._faiss

    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Top-``k`` tokens by inner product of each of ``queries`` [N_q, D]: (scores, ids), best first.

        Works in blocks of query rows so that no intermediate exceeds
        ``block_elements`` elements (the exact [rows, N_d] products, or the
        gathered [rows, k, D] vectors of the faiss path).
        """
        n_tokens, dim = self.tokens.shape
        if queries.shape[0] == 0:
            empty = torch.zeros(0, k, device=queries.device)
            return empty.to(queries.dtype), empty.long()
        if self.kind == "exact":
            rows = max(1, self.block_elements // max(1, n_tokens))
            values, indices = [], []
            for start in range(0, queries.shape[0], rows):
                sims = queries[start : start + rows] @ self.tokens.transpose(0, 1)
                top = sims.topk(k, dim=1)  # sorted, best first; differentiable through the values
                values.append(top.values)
                indices.append(top.indices)
            return torch.cat(values), torch.cat(indices)
        import numpy as np

        q = np.ascontiguousarray(queries.detach().float().cpu().numpy())
        _, ids_np = self._faiss_index().search(q, k)
        ids = torch.from_numpy(ids_np).to(queries.device, torch.long)
        rows = max(1, self.block_elements // max(1, k * dim))
        scores = torch.cat(
            [
                (queries[s : s + rows].unsqueeze(1) * self.tokens[ids[s : s + rows]]).sum(dim=-1)
                for s in range(0, queries.shape[0], rows)
            ]
        )  # recomputed in torch: the same values as the exact path, with gradients
        order = scores.detach().argsort(dim=1, descending=True)
        return scores.gather(1, order), ids.gather(1, order)


def xtr_inference_scores(
    q: Tensor, q_mask: Tensor, index: TokenIndex, k: int, aggregate: Literal["mean", "sum"]
) -> tuple[Tensor, dict[str, int]]:
    """XTR inference scores [B_q, B_d] of queries ``q`` against an indexed candidate set, and cost counts.

    ``k`` is clamped to the number of indexed tokens. Detail: ``k`` (effective
    k'), ``retrieved_tokens`` (query tokens x k': the similarities the scoring
    stage reads) and ``scored_pairs`` ((query token, document) pairs with a
    retrieved score, the rest imputed).
    """
    n_q = q.shape[0]
    n_tokens = index.tokens.shape[0]
    acc = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    if n_tokens == 0:
        out = torch.full((n_q, index.n_docs), EMPTY_DOCUMENT_SCORE, dtype=acc, device=q.device)
        return out, {"k": 0, "retrieved_tokens": 0, "scored_pairs": 0}
    k_eff = min(k, n_tokens)
    scores, ids = index.search(q[q_mask], k_eff)  # stage 1: token retrieval
    return xtr_scores_from_retrieval(q_mask, scores.to(acc), ids, index, aggregate)  # stage 2: scoring


def xtr_scores_from_retrieval(
    q_mask: Tensor, scores: Tensor, ids: Tensor, index: TokenIndex, aggregate: Literal["mean", "sum"]
) -> tuple[Tensor, dict[str, int]]:
    """XTR's scoring stage: document scores from retrieved tokens only, the rest imputed.

    ``scores`` / ``ids`` [N_q, k'] are the retrieval results (best first) of
    the real query tokens ``q_mask`` selects, in row-major order. Reads nothing
    but these N_q x k' similarities (no document token is gathered).
    """
    n_q, t_q = q_mask.shape
    acc = scores.dtype
    k_eff = scores.shape[1]
    lowest = scores[:, -1:]  # m_a: the k'-th retrieved score
    best = torch.full((scores.shape[0], index.n_docs), float("-inf"), dtype=acc, device=scores.device)
    best = best.scatter_reduce(1, index.token_doc[ids], scores, reduce="amax", include_self=True)
    retrieved = torch.isfinite(best)
    filled = torch.where(retrieved, best, lowest.expand_as(best))
    per_token = torch.zeros(n_q, t_q, index.n_docs, dtype=acc, device=scores.device)
    per_token = per_token.index_put((*q_mask.nonzero(as_tuple=True),), filled)
    total = per_token.sum(dim=1)
    if aggregate == "mean":
        total = total / q_mask.sum(dim=1, keepdim=True).clamp(min=1).to(acc)
    total = total.masked_fill(~index.doc_has_tokens.unsqueeze(0), EMPTY_DOCUMENT_SCORE)
    cost = {"k": k_eff, "retrieved_tokens": int(scores.shape[0]) * k_eff, "scored_pairs": int(retrieved.sum())}
    return total, cost


def xtr_train_scores(
    q: Tensor, q_mask: Tensor, d: Tensor, d_mask: Tensor, k_train: int | None, z: Literal["retrieved", "positive"]
) -> tuple[Tensor, dict[str, int]]:
    """XTR training scores [B_q, B_d]: only the top-``k_train`` in-batch document tokens of each query token count.

    ``f(Q, D) = (1/Z) Σ_a max_{b ∈ D} A_ab <q_a, d_b>`` (Lee et al. Eq. 2), the
    max taken over D's real tokens; ``Z`` counts the query tokens with a
    retrieved token in D (``z: retrieved``, the paper) or with a positive
    retrieved maximum (``z: positive``, PyLate's ``gt(0)``); Z = 0 gives 0.
    ``k_train: None`` retrieves every token.
    """
    n_q, t_q, _ = q.shape
    n_d, t_d, _ = d.shape
    acc = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    n_real = int(d_mask.sum())
    if n_real == 0:
        return torch.full((n_q, n_d), EMPTY_DOCUMENT_SCORE, dtype=acc, device=q.device), {"k": 0}
    sims = torch.einsum("aqx,btx->aqbt", q, d).to(acc)  # [B_q, T_q, B_d, T_d]
    real = d_mask.view(1, 1, n_d, t_d)
    low = torch.finfo(acc).min
    k_eff = n_real if k_train is None else min(k_train, n_real)
    flat = sims.masked_fill(~real, low).reshape(n_q, t_q, n_d * t_d)
    top = flat.detach().topk(k_eff, dim=-1).indices
    retrieved = torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, top, True).view_as(sims) & real
    products = torch.where(retrieved, sims, torch.zeros_like(sims)).masked_fill(~real, low)
    best = products.max(dim=-1).values  # [B_q, T_q, B_d]: max_b A_ab s_ab over D's real tokens
    any_retrieved = retrieved.any(dim=-1)
    best = torch.where(any_retrieved, best, torch.zeros_like(best))
    counted = any_retrieved if z == "retrieved" else best > 0
    counted = counted & q_mask.view(n_q, t_q, 1)
    total = (best * q_mask.view(n_q, t_q, 1)).sum(dim=1)
    z_count = counted.sum(dim=1).clamp(min=1).to(acc)
    out = (total / z_count).masked_fill(~d_mask.any(dim=1).unsqueeze(0), EMPTY_DOCUMENT_SCORE)
    return out, {"k": k_eff}


class XTRAligner(Aligner):
    """XTR between query token sequences and document token sequences.

    Train mode: the in-batch top-``k_train`` objective's scores (put a
    cross-entropy loss such as ``std.info-nce`` on them: the XTR loss).
    Eval mode: top-``k`` (k') retrieval over every document token of the
    second side through an ``exact`` (torch top-k) or ``faiss`` (``IndexFlatIP``)
    index, scores from retrieved tokens only, missing similarities imputed with
    the lowest retrieved score. When the same candidate tensor is scored again
    (an evaluator scoring query chunks against one corpus), the index is reused.
    """

    accepts: ClassVar[tuple[ShapeReq, ShapeReq]] = ("sequence", "sequence")
    citation: ClassVar[str] = (
        "Lee, Dai, Duddu, Lei, Naim, Chang and Zhao (2023). Rethinking the Role of Token Retrieval in "
        "Multi-Vector Retrieval. NeurIPS 2023. arXiv:2304.01982."
    )

    class Config(ComponentConfig):
        """Options of ``xtr``."""

        k: int = Field(
            1000, ge=1, description="k': document tokens retrieved per query token at inference "
            "(clamped to the number of candidate tokens)"
        )
        k_train: int | None = Field(
            256, ge=1, description="training: top-k over all in-batch document tokens per query token "
            "(null: every token, i.e. MaxSim / |Q|)"
        )
        index: Literal["exact", "faiss"] = Field(
            "exact", description="nearest-neighbour index of the inference retrieval: exact torch top-k, "
            "or faiss IndexFlatIP (pip install 'repmix-xtr[faiss]')"
        )
        aggregate: Literal["mean", "sum"] = Field(
            "mean", description="inference: mean over query tokens (official XTR) or sum (PyLate score_xtr)"
        )
        z: Literal["retrieved", "positive"] = Field(
            "retrieved", description="training normaliser Z: query tokens with a retrieved token (paper) "
            "or with a positive retrieved maximum (PyLate gt(0))"
        )
        normalize: bool = Field(True, description="L2-normalise every token vector first")
        block_elements: int = Field(
            2**24, ge=1, description="exact index: most elements of one [query tokens, corpus tokens] block"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if config.index == "faiss" and not faiss_available():
            raise ConfigError(
                "xtr index: faiss needs the faiss package",
                found="faiss",
                allowed=["exact", "faiss"],
                hint="pip install 'repmix-xtr[faiss]' (faiss-cpu), or use index: exact",
            )
        self._cache: tuple[Any, Any, int, int, TokenIndex] | None = None

    def _build(self, b: Granularity) -> TokenIndex:
        d = F.normalize(b.hidden, p=2, dim=-1) if self.config.normalize else b.hidden
        return TokenIndex.build(d, b.full_mask(), self.config.index, self.config.block_elements)

    def _index(self, b: Granularity) -> TokenIndex:
        """The token index of ``b``, reused while ``b`` is the same unmodified tensor (no gradient)."""
        if b.hidden.requires_grad:
            return self._build(b)
        mask = b.mask
        if self._cache is not None:
            ref_h, ref_m, version, mversion, index = self._cache
            same_mask = (mask is None and ref_m is None) or (ref_m is not None and ref_m() is mask)
            if ref_h() is b.hidden and same_mask and version == b.hidden._version and (
                mask is None or mversion == mask._version
            ):
                return index
        index = self._build(b)
        self._cache = (
            weakref.ref(b.hidden),
            None if mask is None else weakref.ref(mask),
            b.hidden._version,
            -1 if mask is None else mask._version,
            index,
        )
        return index

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        """XTR scores [B_a, B_b] of query sequences ``a`` against document sequences ``b``."""
        q, q_mask = a.hidden, a.full_mask()
        if self.config.normalize:
            q = F.normalize(q, p=2, dim=-1)
        acc = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        if q.shape[0] == 0 or b.hidden.shape[0] == 0:
            return Alignment(torch.zeros(q.shape[0], b.hidden.shape[0], dtype=acc, device=q.device))
        if self.training:
            d = F.normalize(b.hidden, p=2, dim=-1) if self.config.normalize else b.hidden
            scores, detail = xtr_train_scores(q, q_mask, d, b.full_mask(), self.config.k_train, self.config.z)
            return Alignment(scores, {"mode": "train", **detail})
        index = self._index(b)
        scores, detail = xtr_inference_scores(q, q_mask, index, self.config.k, self.config.aggregate)
        return Alignment(scores, {"mode": "inference", **detail})
