"""``token-recycling``: training-free speculative decoding that recycles rejected candidate tokens.

Each step (``evaluation/inference_recycling.py`` of the official code):

1. **Draft**: BFS from the last accepted token (the root, not yet in the KV cache) along the
   static tree template, reading candidates from the adjacency matrix M (V×k);
2. **Verify**: one forward pass over the whole tree with tree attention, then the greedy token at
   every node (argmax of its logits);
3. **Accept** the longest root-to-leaf path whose every node equals the greedy token after its
   parent, plus the greedy token after the last accepted node (the "bonus"): ``a + 1`` new tokens
   for ``a`` accepted draft nodes, so at least one per step (mean accepted tokens ≥ 1);
4. **Recycle**: overwrite M's row of every tree token with the top-k of its logits, then keep the
   KV cache of the prefix and the accepted path only.

Every emitted token is the greedy token after its prefix, so the output equals greedy decoding
(up to floating-point ties between the tree pass and one-token passes). The matrix persists across
``generate`` calls of the same strategy object (the official code keeps one matrix for a whole
benchmark); ``persist: false`` starts every call from zeros.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    CausalLM,
    ComponentConfig,
    ConfigError,
    DecodingStrategy,
    InputError,
    Runtime,
)

from repmix_token_recycling.adjacency import AdjacencyMatrix
from repmix_token_recycling.tree import DraftTree, TreeError, resolve_template
from repmix_token_recycling.verify import pick_verifier

CITATION = (
    "Luo, Wang, Zhu, Zhang, Zhang, Yang & Xu (2025). Turning Trash into Treasure: Accelerating Inference of "
    "Large Language Models with Token Recycling. ACL 2025. arXiv:2408.08696. https://github.com/Luowaterbi/TokenRecycling"
)


def check_tree(value: str | list[list[int]], topk: int) -> None:
    """For pydantic validators: ``value`` names a template or lists the paths of a tree of ranks below ``topk``."""
    try:
        DraftTree.from_template(resolve_template(value), topk)
    except TreeError as exc:
        raise ValueError(str(exc)) from None


class TokenRecycling(DecodingStrategy):
    """Greedy-equivalent speculative decoding: adjacency-matrix drafts verified with tree attention."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``token-recycling``."""

        topk: int = Field(8, ge=1, le=64, description="candidates kept per token in the adjacency matrix (--output-id-topk)")
        tree: str | list[list[int]] = Field(
            "2.2.2",
            description="draft-tree template: '2.2.2' (official, 80 nodes), 'small' (20 nodes) or a list of "
            "paths such as [[0], [1], [0, 0]] (node [i, j] = j-th candidate of the root's i-th candidate)",
        )
        verify: Literal["auto", "tree", "paths"] = Field(
            "auto",
            description="tree: one tree-attention pass (needs std.hf-lm's transformers model); paths: any CausalLM, "
            "one pass per leaf (lossless, slow); auto: tree when possible",
        )
        persist: bool = Field(True, description="keep the adjacency matrix across generate calls (as the official benchmark)")

        @model_validator(mode="after")
        def _tree(self) -> TokenRecycling.Config:
            check_tree(self.tree, self.topk)
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        try:
            self.tree = DraftTree.from_template(resolve_template(config.tree), config.topk)
        except TreeError as exc:
            raise ConfigError(str(exc), path="tree") from None
        self._truncated: dict[int, DraftTree] = {}
        self.matrix: AdjacencyMatrix | None = None
        #: statistics of the last ``generate`` call: steps, tokens, accepted tokens per step, seconds
        self.last_stats: dict[str, Any] = {}

    def reset(self) -> None:
        """Forget the adjacency matrix (the next call starts from zeros)."""
        self.matrix = None

    def _tree_for(self, max_depth: int | None) -> DraftTree:
        if max_depth is None or max_depth >= self.tree.max_depth:
            return self.tree
        if max_depth not in self._truncated:
            self._truncated[max_depth] = self.tree.truncated(max_depth)
        return self._truncated[max_depth]

    def generate(
        self,
        lm: CausalLM,
        prompt: Sequence[int],
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int] = (),
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Greedy continuation of ``prompt`` (at most ``max_new_tokens``; a stop id ends and is kept)."""
        prompt = [int(i) for i in prompt]
        if not prompt:
            raise InputError("the prompt holds no tokens to continue")
        limit = getattr(lm, "context_length", None)
        if limit is not None and len(prompt) >= limit:
            raise InputError(f"the prompt is {len(prompt)} tokens long; the model attends to {limit} at most")
        if limit is not None:
            max_new_tokens = min(max_new_tokens, limit - len(prompt))
        stops = {int(s) for s in stop_ids}
        verifier = pick_verifier(lm, self.config.verify)
        start = time.perf_counter()
        cache = verifier.prefill(prompt[:-1])
        cache_len, root = len(prompt) - 1, prompt[-1]
        out: list[int] = []
        accepted: list[int] = []
        if not self.config.persist:
            self.matrix = None
        while len(out) < max_new_tokens:
            tree = self._tree_for(None if limit is None else limit - 1 - cache_len)
            if self.matrix is None:  # the vocabulary is known from the first logits: draft the root alone
                tree = self._tree_for(0)
            ids = (self.matrix.draft(root, tree) if self.matrix is not None
                   else np.array([root], dtype=np.int64))
            logits, tree_cache = verifier.verify(cache, cache_len, ids, tree)
            if self.matrix is None:
                self.matrix = AdjacencyMatrix(int(logits.shape[-1]), self.config.topk)
            greedy = logits.argmax(-1).cpu().numpy()
            nodes, n_accepted = best_path(tree, ids, greedy)
            new = [int(ids[n]) for n in nodes[1:]] + [int(greedy[nodes[-1]])]
            self.matrix.update(ids, logits)
            accepted.append(n_accepted + 1)
            done = False
            for tok in new:
                out.append(tok)
                if tok in stops or len(out) >= max_new_tokens:
                    done = True
                    break
            if done:
                break
            cache = verifier.keep(cache, tree_cache, cache_len, nodes, ids)
            cache_len += len(nodes)
            root = new[-1]
        self.last_stats = {
            "steps": len(accepted),
            "tokens": len(out),
            "accepted_per_step": accepted,
            "mean_accepted": float(np.mean(accepted)) if accepted else 0.0,
            "forward_passes": verifier.forward_passes,
            "seconds": time.perf_counter() - start,
        }
        return out


def best_path(tree: DraftTree, ids: np.ndarray, greedy: np.ndarray) -> tuple[list[int], int]:
    """Root-to-node indices of the longest accepted draft, and its number of accepted nodes.

    A node is accepted when its token equals the greedy token after its parent and its parent is
    accepted (the official ``cumprod`` of matches along each root-to-leaf path); ties go to the
    first path, as ``argmax`` does in the official code.
    """
    paths = tree.leaf_paths
    valid = paths >= 0
    safe = np.where(valid, paths, 0)
    drafted = ids[safe]
    predicted = greedy[safe]
    match = (drafted[:, 1:] == predicted[:, :-1]) & valid[:, 1:]
    reward = np.cumprod(match, axis=1).sum(axis=1) if match.shape[1] else np.zeros(len(paths), dtype=np.int64)
    best = int(np.argmax(reward))
    n = int(reward[best])
    return [int(i) for i in paths[best, : n + 1]], n
