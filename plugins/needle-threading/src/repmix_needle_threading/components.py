"""``needle-haystacks`` (dataset: generated tasks) and ``needle-retrieval`` (evaluator).

The paper asks an LLM to read the whole haystack. In repmix the haystack is a retrieval stress
test for an embedding model: the haystack is cut into chunks of ``pairs_per_chunk`` key-value
pairs (JSON fragments ``"key": "value"``), every chunk is embedded, and each lookup embeds the
key, retrieves the ``top_k`` nearest chunks (cosine) and reads the key's value from the
best-ranked one that holds the key as a key (exact when the right chunk was retrieved). A thread is followed by iterative
retrieval, one hop per pair; a conditional needle retrieves the ``num_needles`` chunks nearest
to the conditional character and reads every value whose key holds it. Metric: exact match of
the task's answer(s), per task and per context length, and the *effective context length* per
task: the longest context length up to which accuracy stays at or above ``threshold``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from repmix.sdk import AssembledModel, ComponentConfig, ConfigError, Dataset, Evaluator, Examples, InputError, Runtime

from repmix_needle_threading.generator import TASKS, NeedleTask, TaskError, generate

CITATION = (
    "Roberts, Han & Albanie (2025). Needle Threading: Can LLMs Follow Threads through Near-Million-Scale "
    "Haystacks? ICLR 2025. arXiv:2411.05000. https://github.com/jonathan-roberts1/needle-threading"
)


class NeedleHaystackDataset(Dataset):
    """Generated Needle Threading tasks: every task x context length x repeat (x depth for single needles).

    ``Examples.columns[tower]`` holds each task's question; ``Examples.extras["tasks"]`` the
    :class:`~repmix_needle_threading.generator.NeedleTask` objects (haystack, keys, answers, fields
    of the official dataset). The split name is ignored: tasks are generated, not read.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``needle-haystacks``."""

        tasks: list[Literal["single_needle", "multi_needle", "conditional_needle", "single_thread", "multi_thread"]] = Field(
            default_factory=lambda: ["single_needle"], min_length=1, description="task types to generate"
        )
        context_lengths: list[int] = Field(
            default_factory=lambda: [2000, 8000], min_length=1,
            description="haystack sizes in characters (the official context_length field)",
        )
        depths: list[float] = Field(
            default_factory=lambda: [0.0, 0.5, 1.0], min_length=1,
            description="needle depths of single needles (and of the first pair of a single thread), 0 = top",
        )
        repeats: int = Field(1, ge=1, description="haystacks per setting (seed + repeat)")
        seed: int = Field(0, description="haystack seed: 0 reproduces the official haystack's first pair")
        num_needles: int = Field(3, ge=1, description="needles of multi / conditional tasks")
        character: str = Field("*", min_length=1, max_length=1, description="character of conditional needles")
        thread_length: int = Field(3, ge=2, description="pairs per thread")
        direction: Literal["forward", "backward", "random"] = Field("forward", description="thread direction")
        num_threads: int = Field(2, ge=1, description="threads of the multi_thread task")
        tower: str = Field("text", min_length=1, description="column name of the questions (the tower that reads them)")

        @field_validator("depths")
        @classmethod
        def _depths(cls, value: list[float]) -> list[float]:
            bad = [d for d in value if not 0.0 <= d <= 1.0]
            if bad:
                raise ValueError(f"depths must be within [0, 1], got {bad}")
            return value

        @field_validator("context_lengths")
        @classmethod
        def _lengths(cls, value: list[int]) -> list[int]:
            bad = [n for n in value if n < 80]
            if bad:
                raise ValueError(f"context lengths must be at least 80 characters (one key-value pair), got {bad}")
            return value

        @model_validator(mode="after")
        def _check(self) -> NeedleHaystackDataset.Config:
            if "conditional_needle" in self.tasks and (self.character in "0123456789abcdef-\"\\"):
                raise ValueError(f"character {self.character!r} occurs in UUIDs (or is a quote): use e.g. '*'")
            return self

    config: Config

    def tasks(self) -> list[NeedleTask]:
        """Every generated task, in a fixed order."""
        c = self.config
        out: list[NeedleTask] = []
        for task in c.tasks:
            for length in c.context_lengths:
                for repeat in range(c.repeats):
                    depths = c.depths if task in ("single_needle", "single_thread") else [0.5]
                    for depth in depths:
                        try:
                            t = generate(task, length, seed=c.seed + repeat, repeat=repeat, depth=depth,
                                         num_needles=c.num_needles, character=c.character,
                                         thread_length=c.thread_length, direction=c.direction,
                                         num_threads=c.num_threads)
                        except TaskError as exc:
                            raise ConfigError(str(exc), path="context_lengths", found=length) from None
                        t.id = f"{t.id}-d{depth:g}"
                        out.append(t)
        return out

    def load(self, split: str | None = None) -> Examples:
        tasks = self.tasks()
        return Examples({self.config.tower: [t.question for t in tasks]}, ids=[t.id for t in tasks],
                        extras={"tasks": tasks})


def chunk_pairs(pairs: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    """Consecutive groups of ``size`` pairs."""
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


def chunk_text(chunk: list[tuple[str, str]]) -> str:
    """A chunk as the JSON fragment it is in the haystack: ``"k": "v", "k2": "v2"``."""
    return ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in chunk)


class NeedleRetrievalEvaluator(Evaluator):
    """Exact match of needle / thread answers by chunk retrieval with the model's embeddings."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``needle-retrieval``."""

        tower: str | None = Field(None, description="tower embedding chunks and keys (default: the model's first)")
        granularity: str | None = Field(None, description="pooled granularity to compare (default: the tower's last)")
        pairs_per_chunk: int = Field(1, ge=1, description="key-value pairs per retrieved chunk")
        top_k: int = Field(
            1, ge=1,
            description="chunks retrieved per lookup; the value is read from the best-ranked one holding the key as a "
            "key (a thread's keys also occur as the previous pair's value, so top_k: 1 can retrieve the wrong chunk)",
        )
        threshold: float = Field(0.5, ge=0, le=1, description="accuracy a context length must reach to count as effective")
        batch_size: int = Field(64, ge=1, description="chunks embedded at once")
        limit: int | None = Field(None, ge=1, description="evaluate at most this many tasks")

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._cache: dict[str, np.ndarray] = {}

    def _embed(self, model: AssembledModel, texts: list[str]) -> np.ndarray:
        c = self.config
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = model.encode(missing, tower=c.tower, granularity=c.granularity, batch_size=c.batch_size)
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.maximum(norms, 1e-12)
            self._cache.update(zip(missing, vecs))
        return np.stack([self._cache[t] for t in texts])

    def _retrieve(self, model: AssembledModel, chunks: np.ndarray, query: str, k: int = 1) -> list[int]:
        q = self._embed(model, [query])[0]
        scores = chunks @ q
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]

    def solve(self, model: AssembledModel, task: NeedleTask) -> tuple[list[str], int, int]:
        """Predicted answers, and correct / total retrieval hops."""
        groups = chunk_pairs(task.pairs, self.config.pairs_per_chunk)
        emb = self._embed(model, [chunk_text(g) for g in groups])
        tables = [dict(g) for g in groups]
        hops_ok = hops = 0

        def lookup(key: str) -> str | None:
            nonlocal hops_ok, hops
            hops += 1
            value = next((tables[i][key] for i in self._retrieve(model, emb, key, k=self.config.top_k)
                          if key in tables[i]), None)
            hops_ok += value is not None
            return value

        if task.task in ("single_needle", "multi_needle"):
            return [lookup(k) or "" for k in task.keys], hops_ok, hops
        if task.task == "conditional_needle":
            idx = self._retrieve(model, emb, task.conditional_character, k=task.num_needles)
            found = [v for i in idx for k, v in groups[i] if task.conditional_character in k]
            hops = task.num_needles
            hops_ok = sum(any(task.conditional_character in k for k, _ in groups[i]) for i in idx)
            return found, hops_ok, hops
        preds = []
        for start in task.keys:
            key: str | None = start
            for _ in range(task.thread_length):
                key = lookup(key) if key is not None else None
            preds.append(key or "")
        return preds, hops_ok, hops

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        tasks = data.extras.get("tasks")
        if not tasks:
            raise InputError(
                "needle-retrieval needs generated tasks (Examples.extras['tasks']): evaluate on a needle-haystacks dataset",
                hint="evaluate: {type: needle-retrieval, data: {type: needle-haystacks, ...}}",
            )
        if self.config.limit:
            tasks = tasks[: self.config.limit]
        by_task: dict[str, list[bool]] = defaultdict(list)
        by_length: dict[tuple[str, int], list[bool]] = defaultdict(list)
        ok_hops = all_hops = 0
        for task in tasks:
            preds, h_ok, h = self.solve(model, task)
            right = sorted(preds) == sorted(task.values)
            by_task[task.task].append(right)
            by_length[(task.task, task.context_length)].append(right)
            ok_hops += h_ok
            all_hops += h
            if len(self._cache) > 200_000:
                self._cache.clear()
        metrics: dict[str, float] = {
            "accuracy": float(np.mean([r for v in by_task.values() for r in v])),
            "hop_accuracy": ok_hops / max(all_hops, 1),
            "tasks": float(len(tasks)),
        }
        for name in TASKS:
            if name not in by_task:
                continue
            metrics[f"{name}/accuracy"] = float(np.mean(by_task[name]))
            lengths = sorted(length for t, length in by_length if t == name)
            effective = 0
            for length in lengths:
                acc = float(np.mean(by_length[(name, length)]))
                metrics[f"{name}/accuracy@{length}"] = acc
                if acc < self.config.threshold:
                    break
                effective = length
            for length in lengths:  # every length's accuracy, also past the first failure
                metrics[f"{name}/accuracy@{length}"] = float(np.mean(by_length[(name, length)]))
            metrics[f"{name}/effective_context"] = float(effective)
        return metrics
