"""Helpers shared by the engine tests: toy dataset/evaluator/loss components and run configs.

The model components come from ``tests/toys.py``; this module adds what
training needs (a dataset, an evaluator, a per-example loss) and registers
everything with ``temporary_component``. Subprocess tests (SIGKILL, torchrun)
use repmix-std components on a tiny random BERT written by :func:`write_tiny_bert`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import Field

from repmix.core.components import ComponentConfig, Loss, LossInputs
from repmix.core.config import LocatedConfig, load_config
from repmix.core.components import Dataset, Evaluator, Examples
from repmix.core.dataflow import LossOutput
from repmix.registry.registry import temporary_component

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import toys  # noqa: E402


class ToyPairs(Dataset):
    """``n`` random (query, document) string pairs; the document is the reversed query plus noise."""

    class Config(ComponentConfig):
        n: int = Field(24, ge=1)
        seed: int = 0
        split: str = "train"
        targets: bool = False

    def load(self, split: str | None = None) -> Examples:
        split = split or self.config.split
        rng = np.random.default_rng(self.config.seed + (0 if split == "train" else 1000))
        letters = list("abcdefghijklmnopqrstuvwxyz")
        queries, docs = [], []
        for _ in range(self.config.n):
            length = int(rng.integers(3, 9))
            q = "".join(rng.choice(letters, size=length))
            queries.append(q)
            docs.append(q[::-1] + "".join(rng.choice(letters, size=2)))
        targets = [float(v) for v in rng.uniform(0.2, 1.0, size=self.config.n)] if self.config.targets else None
        return Examples({"query": queries, "document": docs}, targets=targets)


class ToyEvaluator(Evaluator):
    """Mean cosine of matching pairs and top-1 retrieval accuracy."""

    class Config(ComponentConfig):
        pass

    def evaluate(self, model: Any, data: Examples) -> dict[str, float]:
        q = torch.from_numpy(model.encode(data.columns["query"], tower="query"))
        d = torch.from_numpy(model.encode(data.columns["document"], tower="document"))
        q = torch.nn.functional.normalize(q, dim=-1)
        d = torch.nn.functional.normalize(d, dim=-1)
        sims = q @ d.T
        acc = (sims.argmax(1) == torch.arange(len(q))).double().mean()
        return {"cos": float(sims.diagonal().mean()), "acc": float(acc)}


class DiagonalLoss(Loss):
    """A loss that decomposes per example: mean over i of (1 - s_ii), or of (s_ii - t_i)^2 with targets."""

    class Config(ComponentConfig):
        use_targets: bool = False
        delay_ms: float = 0.0

    def forward(self, inputs: LossInputs) -> LossOutput:
        if self.config.delay_ms:
            time.sleep(self.config.delay_ms / 1000.0)
        diag = inputs.alignment.scores.diagonal()
        if self.config.use_targets:
            assert inputs.targets is not None
            value = ((diag - inputs.targets) ** 2).mean()
        else:
            value = (1.0 - diag).mean()
        return LossOutput(value, {"diag": float(diag.detach().mean())})


ENGINE_TOYS: dict[tuple[str, str], type] = {
    **toys.TOYS,
    ("dataset", "toy-pairs"): ToyPairs,
    ("evaluator", "toy-eval"): ToyEvaluator,
    ("loss", "diagonal"): DiagonalLoss,
}


@contextlib.contextmanager
def registered_toys() -> Iterator[None]:
    """Register every toy component for the duration of the block."""
    with contextlib.ExitStack() as stack:
        for (kind, name), cls in ENGINE_TOYS.items():
            stack.enter_context(temporary_component(kind, name, cls))
        yield


TOY_RUN = """\
model:
  towers:
    query:
      tokenizer: {type: chars}
      encoder: {type: embedding, dim: 16}
      poolers:
        sentence: {type: toy-mean, normalize: true}
    document: {shared_with: query}
  alignments:
    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}
  losses:
    - {type: contrastive, on: sim, scale: 20.0}
data: {type: toy-pairs, n: 24}
train: {epochs: 2, batch_size: 8, lr: 0.01, seed: 0, log_every: 1, warmup_ratio: 0.1}
evaluate: {type: toy-eval, split: dev}
"""


def toy_config(tmp_path: Path, overrides: list[str] | None = None, text: str = TOY_RUN) -> LocatedConfig:
    """Write the toy run config to ``tmp_path/toy.yaml`` and load it with ``overrides``."""
    path = tmp_path / "toy.yaml"
    path.write_text(text)
    return load_config(path, overrides or [])


def losses_of(run_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) of every ``train`` record in a run's metrics.jsonl."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "train":
            out.append((rec["step"], rec["loss"]))
    return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (a saved model's or a checkpoint's)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def max_weight_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between two safetensors files with the same tensors."""
    wa, wb = weights(a), weights(b)
    assert set(wa) == set(wb)
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


# ----------------------------------------------------------- subprocess tests
def std_available() -> bool:
    """True when repmix-std's components needed by the subprocess tests are installed."""
    from importlib.metadata import entry_points

    needed = {
        "repmix.tokenizers": "hf-tokenizer",
        "repmix.encoders": "hf-transformer",
        "repmix.poolers": "mean",
        "repmix.aligners": "cosine",
        "repmix.losses": "mnrl",
        "repmix.datasets": "pairs",
    }
    return all(any(e.name == name for e in entry_points(group=g)) for g, name in needed.items())


needs_std = pytest.mark.skipif(not std_available(), reason="repmix-std (hf-tokenizer, pairs, mnrl, ...) not installed")


def write_tiny_bert(directory: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocabulary, saved with save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *[f"##{c}" for c in letters]]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(directory))
    return directory


def write_pairs_tsv(path: Path, n: int, seed: int = 0) -> Path:
    """A TSV of ``n`` (query, document) rows of random letter words."""
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    rows = ["query\tdocument"]
    for _ in range(n):
        n_words = int(rng.integers(1, 4))
        q = " ".join("".join(rng.choice(letters, size=int(rng.integers(2, 6)))) for _ in range(n_words))
        d = q + " " + "".join(rng.choice(letters, size=3))
        rows.append(f"{q}\t{d}")
    path.write_text("\n".join(rows) + "\n")
    return path


STD_RUN = """\
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {bert}, max_length: 16}}
      encoder: {{type: hf-transformer, model: {bert}}}
      poolers:
        sentence: {{type: mean}}
    document: {{shared_with: query}}
  alignments:
    sim: {{type: cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: mnrl, on: sim}}
data: {{type: pairs, path: {data}, fields: {{query: query, document: document}}}}
train: {{epochs: 2, batch_size: 8, lr: 0.001, seed: 0, log_every: 1, warmup_steps: 1, device: cpu}}
"""


def std_config_file(tmp_path: Path, n: int = 48, extra: str = "") -> Path:
    """A repmix-std config training a tiny BERT on ``n`` random pairs (files under ``tmp_path``)."""
    bert = write_tiny_bert(tmp_path / "bert")
    data = write_pairs_tsv(tmp_path / "pairs.tsv", n)
    path = tmp_path / "std.yaml"
    path.write_text(STD_RUN.format(bert=bert, data=data) + extra)
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_env(*paths: Path) -> dict[str, str]:
    """Environment for subprocesses: ``paths`` and tests/ importable, offline, one thread per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONUNBUFFERED": "1"})
    return env


def toy_entry_points() -> dict[str, dict[str, str]]:
    """Entry points declaring every engine toy, for a fake distribution (subprocess tests)."""
    groups = {
        "tokenizer": "repmix.tokenizers", "encoder": "repmix.encoders", "pooler": "repmix.poolers",
        "aligner": "repmix.aligners", "loss": "repmix.losses", "dataset": "repmix.datasets",
        "evaluator": "repmix.evaluators",
    }
    eps: dict[str, dict[str, str]] = {}
    for (kind, name), cls in ENGINE_TOYS.items():
        eps.setdefault(groups[kind], {})[name] = f"{cls.__module__}:{cls.__name__}"
    return eps
