"""Builders shared by the decoder tests: a tiny dynamic-tokenization LM and std's plain BPE decoder."""

from __future__ import annotations

from typing import Any

from repmix.sdk import LocatedConfig, build_model, plan_model

#: A tiny GPT-2 (the architecture block of the configs, scaled down).
ARCH = {"model_type": "gpt2", "n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 64}


def dynamic_tower(tiny_bpe: str, max_merges: int | None = None, tokenizer: dict[str, Any] | None = None,
                  **encoder: Any) -> dict[str, Any]:
    """The text tower: dynamic-bpe over std's BPE (a nested std.lm-tokenizer block) and dynamic-lm."""
    return {
        "tokenizer": {"type": "dynamic-tokenization.dynamic-bpe", "max_merges": max_merges, "max_length": 64,
                      "base": {"type": "std.lm-tokenizer", "algorithm": "bpe", "file": tiny_bpe, "max_length": 64},
                      **(tokenizer or {})},
        "encoder": {"type": "dynamic-tokenization.dynamic-lm", "architecture": ARCH, **encoder},
    }


def std_tower(tiny_bpe: str) -> dict[str, Any]:
    """The plain BPE decoder of examples/lm-scifact.yaml, scaled down: std.lm-tokenizer + std.hf-lm."""
    return {
        "tokenizer": {"type": "std.lm-tokenizer", "algorithm": "bpe", "file": tiny_bpe, "max_length": 64},
        "encoder": {"type": "std.hf-lm", "architecture": ARCH, "tie_embeddings": True},
    }


def build(tower: dict[str, Any], seed: int = 0) -> Any:
    """An AssembledModel with one ``text`` tower and std.causal-lm, in eval mode."""
    cfg = {"model": {"towers": {"text": tower}, "losses": [{"type": "std.causal-lm"}]}}
    model = build_model(plan_model(LocatedConfig(cfg)), seed=seed)
    model.eval()
    return model
