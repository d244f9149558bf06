"""Small builders shared by the tests: a tiny Byte2Word LM and its word tokenizer, built as the model builder does."""

from __future__ import annotations

from typing import Any

import torch
from repmix.sdk import LocatedConfig, build_model, plan_model


def tiny_model(split: str = "punctuation", max_word_bytes: int = 8, seed: int = 0, **encoder: Any) -> tuple[Any, Any]:
    """``(tokenizer, encoder)`` of a tiny Byte2Word LM (eval mode, dropout 0)."""
    enc = {"type": "byte2word.byte2word-lm", "dim": 32, "heads": 2, "layers": 2, "decoder_layers": 1,
           "byte_dim": 16, "latents": 3, "embed_heads": 2, "embed_mlp_ratio": 2, "max_positions": 96,
           "dropout": 0.0, **encoder}
    cfg = {"model": {"towers": {"text": {
        "tokenizer": {"type": "learn-your-tokens.word-bytes", "split": split, "max_word_bytes": max_word_bytes,
                      "max_length": 96},
        "encoder": enc}}, "losses": [{"type": "std.causal-lm"}]}}
    model = build_model(plan_model(LocatedConfig(cfg)), seed=seed)
    model.eval()
    tower = model.tower("text")
    return tower.tokenizer, tower.encoder


def ids_of(tok: Any, text: str | bytes) -> torch.Tensor:
    """``[1, T]`` ids: BOS + the bytes of ``text``."""
    return torch.tensor([[tok.bos_token_id, *tok.encode_plain(text)]])
