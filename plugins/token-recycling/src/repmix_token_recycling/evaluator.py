"""``recycling-speedup``: Token Recycling against a baseline strategy (greedy) on prompts cut from documents.

Each document (a ``text-corpus`` without ``block_size``, e.g. SciFact's held-out abstracts) gives one
prompt: ``[BOS]`` + its first ``prompt_tokens`` tokens. Both strategies continue every prompt for
``max_new_tokens`` (stopping at ``[EOS]``), alternating prompt by prompt so that machine load hits
both alike; one warm-up prompt is decoded first and not timed. Token Recycling keeps one adjacency
matrix over all prompts (as the official benchmark does).

Metrics: ``baseline_tokens_per_s``, ``recycling_tokens_per_s``, ``speedup`` (their ratio),
``mean_accepted_tokens`` (new tokens per verification step, over all steps), ``identical`` (fraction
of prompts whose output equals the baseline's token for token), ``baseline_distinct_ratio`` (distinct
tokens / tokens of each baseline output, averaged: low values mean repetitive text, which drafts
predict well), ``forward_passes_per_token`` of recycling, ``prompts`` and ``tokens`` (new tokens of
recycling).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    AssembledModel,
    ComponentConfig,
    Evaluator,
    Examples,
    InputError,
    Runtime,
    load_component_class,
)

from repmix_token_recycling.decoding import CITATION, TokenRecycling, check_tree


def causal_tower(model: AssembledModel, tower: str | None) -> tuple[Any, Any]:
    """``(tokenizer, encoder)`` of the named tower or of the first one whose encoder offers next_logprobs."""
    for name in [tower] if tower is not None else list(model.tower_names):
        t = model.tower(name)
        if callable(getattr(t.encoder, "next_logprobs", None)) and getattr(t.encoder, "causal", True) is not False:
            return t.tokenizer, t.encoder
    raise InputError(
        f"{'tower ' + repr(tower) if tower else 'no tower'} has a causal LM (next_logprobs): decoding needs a decoder",
        hint="use a causal encoder such as std.hf-lm with model_type gpt2",
    )


class RecyclingSpeedupEvaluator(Evaluator):
    """Tokens per second and accepted tokens per step of Token Recycling vs greedy; outputs compared."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``recycling-speedup``."""

        tower: str | None = Field(None, description="causal tower to decode with (default: the first causal one)")
        prompt_tokens: int = Field(32, ge=1, description="prompt = [BOS] + this many first tokens of each document")
        max_new_tokens: int = Field(64, ge=1, description="tokens to generate per prompt")
        limit: int | None = Field(20, ge=1, description="prompts to decode (documents shorter than prompt_tokens are skipped)")
        baseline: str = Field("std.greedy", min_length=1, description="registered decoding strategy to compare with")
        topk: int = Field(8, ge=1, le=64, description="Token Recycling: candidates per token")
        tree: str | list[list[int]] = Field("2.2.2", description="Token Recycling: draft-tree template")
        verify: Literal["auto", "tree", "paths"] = Field("auto", description="Token Recycling: verification backend")

        @model_validator(mode="after")
        def _tree(self) -> RecyclingSpeedupEvaluator.Config:
            check_tree(self.tree, self.topk)
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.recycling = TokenRecycling(
            TokenRecycling.Config(topk=config.topk, tree=config.tree, verify=config.verify, persist=True), Runtime())

    def _prompts(self, tok: Any, data: Examples) -> list[list[int]]:
        column = data.columns.get(self.config.tower or "text")
        if column is None:
            column = next(iter(data.columns.values()))
        bos = getattr(tok, "bos_token_id", None)
        prompts: list[list[int]] = []
        for text in column:
            if not isinstance(text, str):
                raise InputError(f"expected documents as text, got {type(text).__name__}",
                                 hint="evaluate on a text-corpus without block_size")
            ids = list(tok.encode_plain(text))
            if len(ids) < self.config.prompt_tokens:
                continue
            prompts.append(([bos] if bos is not None else []) + ids[: self.config.prompt_tokens])
            if self.config.limit is not None and len(prompts) > self.config.limit:  # + 1 warm-up prompt
                break
        if len(prompts) < 2:
            raise InputError(f"need at least 2 documents of {self.config.prompt_tokens}+ tokens, found {len(prompts)}")
        return prompts

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        tok, lm = causal_tower(model, c.tower)
        baseline_cls = load_component_class("decoding", c.baseline)
        baseline = baseline_cls(baseline_cls.Config(), Runtime())
        prompts = self._prompts(tok, data)
        eos = getattr(tok, "eos_token_id", None)
        stops = [eos] if eos is not None else []
        self.recycling.reset()
        was_training = model.training
        model.eval()
        base_time = rec_time = 0.0
        base_tokens = rec_tokens = 0
        same = 0
        distinct: list[float] = []
        accepted: list[int] = []
        passes = 0
        try:
            with torch.inference_mode():
                for i, prompt in enumerate(prompts):
                    t0 = time.perf_counter()
                    ref = baseline.generate(lm, prompt, max_new_tokens=c.max_new_tokens, stop_ids=stops)
                    t1 = time.perf_counter()
                    out = self.recycling.generate(lm, prompt, max_new_tokens=c.max_new_tokens, stop_ids=stops)
                    t2 = time.perf_counter()
                    if i == 0:
                        continue  # warm-up (also warms the adjacency matrix, as any earlier prompt would)
                    base_time += t1 - t0
                    rec_time += t2 - t1
                    base_tokens += len(ref)
                    rec_tokens += len(out)
                    same += out == ref
                    distinct.append(len(set(ref)) / max(len(ref), 1))
                    accepted += self.recycling.last_stats["accepted_per_step"]
                    passes += self.recycling.last_stats["forward_passes"]
        finally:
            model.train(was_training)
        n = len(prompts) - 1
        base_tps = base_tokens / max(base_time, 1e-9)
        rec_tps = rec_tokens / max(rec_time, 1e-9)
        return {
            "baseline_tokens_per_s": base_tps,
            "recycling_tokens_per_s": rec_tps,
            "speedup": rec_tps / max(base_tps, 1e-9),
            "mean_accepted_tokens": float(np.mean(accepted)) if accepted else 0.0,
            "identical": same / n,
            "baseline_distinct_ratio": float(np.mean(distinct)),
            "forward_passes_per_token": passes / max(rec_tokens, 1),
            "prompts": float(n),
            "tokens": float(rec_tokens),
            "matrix_mb": (self.recycling.matrix.nbytes / 2**20) if self.recycling.matrix is not None else 0.0,
        }
