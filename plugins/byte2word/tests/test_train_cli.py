"""End to end (reference run, Byte2Word): std.causal-lm trains the tower and std's bits-per-byte evaluators score it unchanged."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import yaml
from repmix.sdk.testing import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write_corpus(path: Path, n: int = 60) -> None:
    rng = random.Random(0)
    words = ["vitamin", "deficiency", "bone", "loss", "cells", "protein", "(p <", "0.05)", "associated", "with",
             "the", "of", "and", "in"]
    with path.open("w") as fh:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randrange(8, 30)))
            fh.write(json.dumps({"_id": str(i), "title": f"Doc {i}", "text": text}) + "\n")


@pytest.mark.parametrize("config", ["lm-scifact.yaml", "lm-smiles.yaml"])
def test_configs_are_valid(config: str) -> None:
    assert run_cli(["check", str(CONFIGS / config)]) == 0


def test_trains_and_is_scored_by_std_bits_per_byte(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus)
    cfg = yaml.safe_load((CONFIGS / "lm-scifact.yaml").read_text())
    cfg["model"]["towers"]["text"]["encoder"].update(dim=32, heads=2, layers=1, byte_dim=16, latents=2, embed_heads=2, max_positions=64, dropout=0.0)
    cfg["model"]["towers"]["text"]["tokenizer"]["max_length"] = 64
    cfg["data"].update(path=str(corpus), block_size=64)
    cfg["train"].update(max_steps=12, batch_size=4, warmup_steps=2, lr=3e-3, checkpoint_every=0)
    for ev in cfg["evaluate"]:
        ev["data"]["path"] = str(corpus)
        ev["split"] = "all"
        ev["limit"] = 5
    cfg.pop("generate")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run_cli(["train", str(path), "-o", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    flat = json.dumps(metrics)
    assert "bits_per_byte" in flat
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    values = [r["loss"] for r in losses if "loss" in r]
    assert values and values[-1] < values[0] and values[0] < math.log(261) + 0.5
