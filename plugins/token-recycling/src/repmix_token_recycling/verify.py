"""Verification of a draft tree: next-token logits at every node, given the accepted prefix.

Two backends, chosen by :func:`pick_verifier`:

* :class:`TreeAttentionVerifier` — the paper's method: the whole tree in **one** forward pass of
  the transformers model behind an ``hf-lm`` encoder (``lm.lm``), with a 4-D attention mask
  (prefix fully visible; inside the tree node i sees node j iff j is i or an ancestor), position
  ids = prefix length + depth, and the prefix's KV cache. Afterwards the cache keeps the prefix
  plus the accepted nodes (a gather along the sequence axis, as the official code copies
  ``past_key_values_data[..., prefix + index_path, :]``).
* :class:`PathVerifier` — for any other :class:`repmix.sdk.CausalLM` (only ``next_logprobs``):
  each root-to-leaf path is scored on a deep copy of the cache, and the accepted tokens are then
  fed to the real cache. The same tokens come out (lossless), but it costs one forward pass per
  leaf: a correctness fallback, not a speed-up.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Protocol

import numpy as np
import torch

from repmix_token_recycling.tree import DraftTree


class Verifier(Protocol):
    """What the decoding loop needs from a verification backend."""

    forward_passes: int

    def prefill(self, ids: list[int]) -> Any:
        """The cache after ``ids`` (``None`` for no ids)."""

    def verify(self, cache: Any, cache_len: int, ids: np.ndarray, tree: DraftTree) -> tuple[torch.Tensor, Any]:
        """Logits ``[N+1, V]`` of every node and a cache holding prefix + tree (or ``None``)."""

    def keep(self, cache: Any, tree_cache: Any, cache_len: int, nodes: list[int], ids: np.ndarray) -> Any:
        """The cache after the prefix and the accepted ``nodes`` (root first)."""


def _device(lm: Any) -> torch.device:
    params = getattr(lm, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


class PathVerifier:
    """Scores each root-to-leaf path with ``next_logprobs`` on a copy of the cache (any CausalLM)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.device = _device(lm)
        self.forward_passes = 0

    def _run(self, ids: list[int], cache: Any) -> tuple[torch.Tensor, Any]:
        self.forward_passes += 1
        return self.lm.next_logprobs(torch.tensor([ids], dtype=torch.long, device=self.device), cache)

    def prefill(self, ids: list[int]) -> Any:
        if not ids:
            return None
        return self._run(ids, None)[1]

    def verify(self, cache: Any, cache_len: int, ids: np.ndarray, tree: DraftTree) -> tuple[torch.Tensor, Any]:
        out: list[torch.Tensor | None] = [None] * tree.size
        for row in tree.leaf_paths:
            nodes = [int(n) for n in row if n >= 0]
            logprobs, _ = self._run([int(ids[n]) for n in nodes], copy.deepcopy(cache))
            for pos, n in enumerate(nodes):
                if out[n] is None:
                    out[n] = logprobs[0, pos]
        return torch.stack([o for o in out if o is not None]), None

    def keep(self, cache: Any, tree_cache: Any, cache_len: int, nodes: list[int], ids: np.ndarray) -> Any:
        return self._run([int(ids[n]) for n in nodes], cache)[1]


class TreeAttentionVerifier:
    """One forward pass over the whole tree with a 4-D tree mask (transformers models of ``hf-lm``)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.model = lm.lm
        self.device = _device(self.model)
        params = inspect.signature(type(self.model).forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.forward_passes = 0
        self._masks: dict[tuple[tuple[tuple[int, ...], ...], int], torch.Tensor] = {}

    def prefill(self, ids: list[int]) -> Any:
        if not ids:
            return None
        self.forward_passes += 1
        return self.lm.next_logprobs(torch.tensor([ids], dtype=torch.long, device=self.device))[1]

    def _mask(self, tree: DraftTree, cache_len: int, dtype: torch.dtype) -> torch.Tensor:
        key = (tree.paths, cache_len)
        if key not in self._masks:
            if len(self._masks) > 512:
                self._masks.clear()
            n = tree.size
            allowed = torch.cat([torch.ones(n, cache_len, dtype=torch.bool), torch.from_numpy(tree.ancestors)], dim=1)
            mask = torch.zeros(1, 1, n, cache_len + n, dtype=dtype)
            self._masks[key] = mask.masked_fill_(~allowed, torch.finfo(dtype).min).to(self.device)
        return self._masks[key]

    @torch.no_grad()
    def verify(self, cache: Any, cache_len: int, ids: np.ndarray, tree: DraftTree) -> tuple[torch.Tensor, Any]:
        dtype = next(self.model.parameters()).dtype
        inputs = torch.from_numpy(ids).to(self.device).unsqueeze(0)
        positions = torch.from_numpy(tree.depths + cache_len).to(self.device).unsqueeze(0)
        self.forward_passes += 1
        out = self.model(input_ids=inputs, attention_mask=self._mask(tree, cache_len, dtype), position_ids=positions,
                         use_cache=True, return_dict=True, **{self.cache_arg: cache})
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = getattr(out, "past_key_values", None)
        return out.logits[0].float(), new_cache

    def keep(self, cache: Any, tree_cache: Any, cache_len: int, nodes: list[int], ids: np.ndarray) -> Any:
        index = torch.tensor([cache_len + n for n in nodes], dtype=torch.long, device=self.device)
        return gather_cache(tree_cache, cache_len, index)


def gather_cache(cache: Any, prefix: int, index: torch.Tensor) -> Any:
    """Keep the first ``prefix`` positions and then the positions ``index`` of a transformers KV cache."""
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56 Cache objects (DynamicCache of DynamicLayer)
        for layer in layers:
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            layer.keys = torch.cat([layer.keys[..., :prefix, :], layer.keys.index_select(-2, index)], dim=-2)
            layer.values = torch.cat([layer.values[..., :prefix, :], layer.values.index_select(-2, index)], dim=-2)
        return cache
    if isinstance(cache, (tuple, list)):  # legacy tuple of (key, value) per layer
        return tuple(
            tuple(torch.cat([t[..., :prefix, :], t.index_select(-2, index)], dim=-2) for t in layer) for layer in cache
        )
    raise TypeError(f"cannot select positions of a {type(cache).__name__} cache")


def supports_tree_attention(lm: Any) -> bool:
    """True when ``lm`` wraps a transformers causal model (``lm.lm``) that takes 4-D masks and position ids."""
    model = getattr(lm, "lm", None)
    if not isinstance(model, torch.nn.Module) or getattr(model, "config", None) is None:
        return False
    if getattr(lm, "causal", True) is False:
        return False
    params = inspect.signature(type(model).forward).parameters
    return "position_ids" in params and "attention_mask" in params and (
        "cache" in params or "past_key_values" in params)


def pick_verifier(lm: Any, mode: str) -> Verifier:
    """``tree`` (tree attention, hf-lm), ``paths`` (any CausalLM) or ``auto`` (tree when possible)."""
    if mode == "paths" or (mode == "auto" and not supports_tree_attention(lm)):
        return PathVerifier(lm)
    if not supports_tree_attention(lm):
        from repmix.sdk import InputError

        raise InputError(
            f"verify: tree needs a transformers causal model behind the encoder (lm.lm, as std.hf-lm has); "
            f"{type(lm).__name__} offers only next_logprobs",
            hint="use verify: auto or verify: paths (lossless, one forward pass per tree leaf)",
        )
    return TreeAttentionVerifier(lm)
