"""The dataset, the retrieval evaluator (with an exact-match embedding model), the command and the config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from repmix.sdk import ConfigError, Examples, InputError, Runtime, load_component_class
from repmix.sdk.testing import run_cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "needle-minilm.yaml"


class TrigramModel:
    """A stand-in embedding model: hashed character 4-grams (a key's chunk shares all its 4-grams)."""

    def encode(self, texts, tower=None, granularity=None, batch_size=32):  # type: ignore[no-untyped-def]
        out = np.zeros((len(texts), 4096), dtype=np.float32)
        for i, t in enumerate(texts):
            for j in range(len(t) - 3):
                out[i, int(hashlib.md5(t[j : j + 4].encode()).hexdigest()[:6], 16) % 4096] += 1
        return out


def build(kind: str, name: str, **cfg):  # type: ignore[no-untyped-def]
    cls = load_component_class(kind, name)
    return cls(cls.Config(**cfg), Runtime())


def test_dataset_generates_every_setting() -> None:
    ds = build("dataset", "needle-haystacks", tasks=["single_needle", "single_thread", "multi_needle"],
               context_lengths=[500, 900], depths=[0.0, 1.0], repeats=2)
    ex = ds.load("test")
    tasks = ex.extras["tasks"]
    assert len(ex) == len(tasks) == 2 * 2 * 2 * 2 + 2 * 2  # single tasks x depths; multi at one depth
    assert ex.columns["text"][0] == tasks[0].question
    assert len(set(ex.ids)) == len(ex)


def test_dataset_rejects_bad_settings() -> None:
    cls = load_component_class("dataset", "needle-haystacks")
    for bad in ({"depths": [2.0]}, {"context_lengths": [10]}, {"tasks": ["conditional_needle"], "character": "a"},
                {"tasks": ["nope"]}):
        with pytest.raises((ConfigError, ValueError)):
            cls.Config(**bad)
    ds = build("dataset", "needle-haystacks", tasks=["multi_thread"], context_lengths=[200], num_threads=3)
    with pytest.raises(ConfigError, match="thread"):
        ds.load(None)


def test_evaluator_solves_every_task_with_an_exact_match_embedder() -> None:
    ds = build("dataset", "needle-haystacks",
               tasks=["single_needle", "multi_needle", "conditional_needle", "single_thread", "multi_thread"],
               context_lengths=[800, 1600], depths=[0.0, 0.5, 1.0], num_needles=2)
    ev = build("evaluator", "needle-retrieval", pairs_per_chunk=2, top_k=2)
    m = ev.evaluate(TrigramModel(), ds.load(None))  # type: ignore[arg-type]
    for task in ("single_needle", "multi_needle", "single_thread", "multi_thread"):
        assert m[f"{task}/accuracy"] == 1.0, m
        assert m[f"{task}/effective_context"] == 1600
    assert "conditional_needle/accuracy" in m
    assert 0 <= m["hop_accuracy"] <= 1


def test_top_1_retrieval_can_land_on_the_previous_hop() -> None:
    """A thread key also occurs as the previous pair's value: with top_k 1 the wrong chunk can win."""
    ds = build("dataset", "needle-haystacks", tasks=["single_thread"], context_lengths=[1600], depths=[0.5])
    task = ds.load(None).extras["tasks"][0]
    one = build("evaluator", "needle-retrieval", pairs_per_chunk=2, top_k=1).solve(TrigramModel(), task)
    two = build("evaluator", "needle-retrieval", pairs_per_chunk=2, top_k=2).solve(TrigramModel(), task)
    assert two[0] == task.values
    assert one[1] <= two[1]


def test_evaluator_needs_tasks() -> None:
    ev = build("evaluator", "needle-retrieval")
    with pytest.raises(InputError, match="needle-haystacks"):
        ev.evaluate(TrigramModel(), Examples({"text": ["q"]}))  # type: ignore[arg-type]


def test_command_writes_official_fields(tmp_path: Path) -> None:
    out = tmp_path / "tasks.jsonl"
    assert run_cli(["needle-threading", "--task", "single_thread", "--context-length", "1000", "--depth", "0",
                    "-o", str(out)]) == 0
    rec = json.loads(out.read_text().splitlines()[0])
    for key in ("id", "haystack", "keys", "values", "question", "context_length", "num_kv_pairs", "needle_depth",
                "thread_length", "thread_direction", "num_threads"):
        assert key in rec
    assert rec["haystack"].startswith('{"e3e70682-c209-4cac-629f-6fbed82c07cd"')
    assert run_cli(["needle-threading", "--task", "multi_needle", "--context-length", "100", "--num-needles", "4",
                    "-o", str(out)]) == 2


def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_config_evaluates_with_minilm(minilm_dir: str, tmp_path: Path) -> None:
    pytest.importorskip("repmix_std")
    code = run_cli(["evaluate", str(CONFIG), "-o", str(tmp_path / "run"), "--no-progress",
                    "data.tasks=[single_needle]", "data.context_lengths=[400]", "data.depths=[0.0]"])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["single_needle/accuracy"] == 1.0
