"""Helpers of the token-recycling tests: a tiny GPT-2 (std.hf-lm, bytes) trained on repetitive text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TEXT = ("the cat sat on the mat. the dog ate the bone. a bird sang in the tree. " * 3).strip()


def tiny_config(tmp: Path, n_positions: int = 96) -> Path:
    """Write the tiny model's config (2 layers, 32 wide, bytes, ``n_positions`` positions) into ``tmp``."""
    cfg = tmp / "tiny-lm.yaml"
    cfg.write_text(f"""
name: tiny-lm
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: {n_positions}}}
      encoder:
        type: std.hf-lm
        architecture: {{model_type: gpt2, n_layer: 2, n_embd: 32, n_head: 2, n_positions: {n_positions}}}
  losses:
    - {{type: std.causal-lm}}
""")
    return cfg


def train_tiny(model: Any, steps: int = 60, seed: int = 0) -> Any:
    """Fit the tower's decoder to TEXT with plain next-byte cross-entropy (a couple of seconds)."""
    torch.manual_seed(seed)
    tower = model.tower("text")
    enc, tok = tower.encoder, tower.tokenizer
    ids = [tok.bos_token_id, *tok.encode_plain(TEXT)]
    width = enc.context_length
    rows = torch.tensor([ids[s : s + width] for s in range(0, len(ids) - width, 24)])
    batch = {"input_ids": rows, "attention_mask": torch.ones_like(rows)}
    opt = torch.optim.AdamW(enc.parameters(), lr=3e-3)
    enc.train()
    for _ in range(steps):
        logits = enc(batch)["logits"].hidden
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model
